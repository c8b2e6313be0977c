#include "pixtream/stream/output_server.hpp"

#include "pixtream/core/media.hpp"

#include "pixtream/net/net.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace pixtream::stream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_batch_chunks = 64;               // chunks per gathered write
constexpr std::size_t max_batch_bytes = 2 * 1024 * 1024;   // ... and bytes
constexpr auto linger_timeout = core::seconds(2);          // waiting for the player's EOF after ours

const char* reason_of(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

// A complete small response (JSON or text body), closing the connection.
std::string simple_response(int status, std::string_view content_type, std::string_view body, bool head_only,
                            std::string_view extra_headers = {}) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nServer: pixtream\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
        "{}Connection: close\r\n\r\n",
        status, reason_of(status), content_type, body.size(), extra_headers);
    if (!head_only) out.append(body);
    return out;
}

std::string error_response(int status, std::string_view reason, bool head_only = false,
                           std::string_view extra_headers = {}) {
    return simple_response(status, "application/json", fmt::format("{{\"error\": \"{}\"}}\n", reason), head_only,
                           extra_headers);
}

}  // namespace

struct output_server::client {
    explicit client(tcp::socket s)
        : socket(std::move(s)), wake(socket.get_executor()), deadline(socket.get_executor()) {}

    tcp::socket socket;
    asio::steady_timer wake;      // cancelled to wake the writer
    asio::steady_timer deadline;  // read and write deadlines
    bool streaming = false;       // registered as a player
    bool http = false;            // the stream goes out after an HTTP response head
    bool head_sent = false;
    bool chunked = false;         // HTTP/1.1 chunked transfer coding
    bool need_sync = true;        // waiting for a random-access chunk
    std::optional<core::chunk_id> last_header;  // id of the header chunk it got last
    std::deque<wire::chunk_ptr> queue;
    std::size_t queued_bytes = 0;  // queued payload bytes, including those being written
    bool closing = false;          // flush the queue, then EOF
    bool dead = false;             // closed: stop at once
};

output_server::output_server(const asio::any_io_executor& ex, const tcp::endpoint& at, output_config cfg,
                             std::function<std::string()> stats_json)
    : acceptor_(ex), cfg_(std::move(cfg)), stats_json_(std::move(stats_json)) {
    const auto fail = [&](const boost::system::error_code& ec) {
        throw boost::system::system_error(
            ec, fmt::format("cannot listen on {}:{}", at.address().to_string(), at.port()));
    };
    boost::system::error_code ec;
    acceptor_.open(at.protocol(), ec);
    if (ec) fail(ec);
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ec) fail(ec);
    acceptor_.bind(at, ec);
    if (ec) fail(ec);
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail(ec);
}

output_server::~output_server() = default;

tcp::endpoint output_server::local_endpoint() const { return acceptor_.local_endpoint(); }

void output_server::stop() {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& c : clients_) {
        if (!c->dead) drop(*c);
    }
}

asio::awaitable<void> output_server::run() {
    auto self = shared_from_this();
    asio::steady_timer pause(acceptor_.get_executor());
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (ec) {
            if (stopping_ || ec == asio::error::operation_aborted) break;
            spdlog::warn("stream: accept failed: {}", ec.message());
            // For example too many open files: keep serving the players we have, try again soon.
            pause.expires_after(core::milliseconds(100));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (stats_.connections >= cfg_.max_connections) {
            ++stats_.refused_connections;
            continue;  // the socket closes as it goes out of scope
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto c = std::make_shared<client>(std::move(socket));
        clients_.push_back(c);
        ++stats_.connections;
        asio::co_spawn(acceptor_.get_executor(), serve(self, std::move(c)),
                       net::log_errors("stream: player connection"));
    }
}

// ---------------------------------------------------------------------------------------------
// Feeding

void output_server::write(wire::chunk_ptr c) {
    if (!c || ended_) return;
    ++stats_.chunks_written;
    if (c->is_header()) set_header(c);
    remember(c);
    for (auto& cl : clients_) {
        if (!cl->streaming || cl->dead || cl->closing) continue;
        feed(*cl, c);
    }
    if (c->end_of_stream()) end_of_stream();
}

void output_server::feed(client& cl, const wire::chunk_ptr& c) {
    if (cl.need_sync) {
        if (!c->random_access()) return;
        if (c->has_header_ref() && c->header_ref != cl.last_header) {
            auto header = find_header(c->header_ref);
            if (!header) return;  // its header is unknown: a player could not decode from here
            enqueue(cl, header);
            cl.last_header = header->id;
        }
        cl.need_sync = false;
    }
    enqueue(cl, c);
    if (c->is_header()) cl.last_header = c->id;
    if (cl.queued_bytes > cfg_.max_queue_bytes) {
        ++stats_.dropped_slow;
        spdlog::info("stream: player too slow ({} bytes queued): disconnected", cl.queued_bytes);
        drop(cl);
    }
}

// The history starts at a random-access chunk and is at most burst_max_bytes (then it starts again at
// the next random-access chunk that leaves it within bounds); chunks before the random-access chunk a
// burst could start at (burst_seconds before the newest) are dropped.
void output_server::remember(const wire::chunk_ptr& c) {
    if (cfg_.burst_seconds <= 0) return;
    if (history_.empty() && !c->random_access()) return;
    history_.push_back(c);
    history_bytes_ += c->payload.size();
    const auto span = static_cast<std::uint64_t>(cfg_.burst_seconds * 1e6);
    const auto newest = c->timestamp;
    // Drop from the front while the next random-access chunk is itself old enough to start at, or
    // while over the byte bound.
    for (;;) {
        auto next_ra = std::find_if(history_.begin() + 1, history_.end(), [](const wire::chunk_ptr& h) { return h->random_access(); });
        const bool over = history_bytes_ > cfg_.burst_max_bytes;
        const bool old_enough = next_ra != history_.end() && (*next_ra)->timestamp + span <= newest;
        if (!over && !old_enough) break;
        if (next_ra == history_.end()) {  // over the bound with no later place to start: start again later
            history_.clear();
            history_bytes_ = 0;
            break;
        }
        for (auto drop = next_ra - history_.begin(); drop > 0; --drop) {
            history_bytes_ -= history_.front()->payload.size();
            history_.pop_front();
        }
    }
}

void output_server::burst(client& cl) {
    for (const auto& c : history_) {
        if (cl.dead) return;
        feed(cl, c);
    }
}

void output_server::gap() {
    ++stats_.gaps;
    for (auto& cl : clients_) cl->need_sync = true;
    // Chunks are missing after the history: a burst from it would not be the stream.
    history_.clear();
    history_bytes_ = 0;
}

void output_server::set_header(wire::chunk_ptr c) {
    if (!c) return;
    const auto pos = std::lower_bound(headers_.begin(), headers_.end(), c->id,
                                      [](const wire::chunk_ptr& h, core::chunk_id id) { return h->id < id; });
    if (pos != headers_.end() && (*pos)->id == c->id) return;
    headers_.insert(pos, std::move(c));
    while (headers_.size() > std::max<std::size_t>(cfg_.headers_kept, 1)) headers_.pop_front();
}

void output_server::end_of_stream() {
    if (ended_) return;
    ended_ = true;
    for (auto& cl : clients_) {
        if (!cl->streaming || cl->dead) continue;
        cl->closing = true;
        cl->wake.cancel();
    }
}

wire::chunk_ptr output_server::find_header(core::chunk_id id) const {
    for (const auto& h : headers_) {
        if (h->id == id) return h;
    }
    return nullptr;
}

void output_server::enqueue(client& c, const wire::chunk_ptr& chunk) {
    if (chunk->payload.empty()) return;
    c.queue.push_back(chunk);
    c.queued_bytes += chunk->payload.size();
    c.wake.cancel();
}

void output_server::drop(client& c) {
    c.dead = true;
    c.queue.clear();
    c.queued_bytes = 0;
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.wake.cancel();
    c.deadline.cancel();
}

void output_server::start_streaming(client& c, bool http) {
    c.streaming = true;
    c.http = http;
    c.need_sync = true;
    ++stats_.clients;
    ++stats_.clients_served;
    if (!ended_) burst(c);
}

std::string output_server::guess_content_type(std::span<const std::byte> first) const {
    if (!cfg_.content_type.empty()) return cfg_.content_type;
    return core::media::sniff_media_type(first);
}

std::string output_server::stream_response_head(std::span<const std::byte> first, bool chunked) const {
    return fmt::format(
        "HTTP/1.1 200 OK\r\nServer: pixtream\r\nContent-Type: {}\r\nCache-Control: no-cache, no-store\r\n"
        "{}Connection: close\r\n\r\n",
        guess_content_type(first), chunked ? "Transfer-Encoding: chunked\r\n" : "");
}

std::string output_server::stats_json() const {
    const auto since = [](std::optional<core::time_point> t) {
        return t ? fmt::format("{:.6f}", core::to_seconds(t->time_since_epoch())) : std::string("null");
    };
    return fmt::format(
        "{{\"connections\": {}, \"clients\": {}, \"clients_served\": {}, \"bytes_sent\": {}, "
        "\"dropped_slow\": {}, \"http_requests\": {}, \"bad_requests\": {}, \"refused_connections\": {}, "
        "\"chunks_written\": {}, \"gaps\": {}, \"first_byte_steady_s\": {}}}",
        stats_.connections, stats_.clients, stats_.clients_served, stats_.bytes_sent, stats_.dropped_slow,
        stats_.http_requests, stats_.bad_requests, stats_.refused_connections, stats_.chunks_written, stats_.gaps,
        since(stats_.first_byte));
}

// ---------------------------------------------------------------------------------------------
// Connections

asio::awaitable<void> output_server::serve(std::shared_ptr<output_server> self, std::shared_ptr<client> c) {
    using namespace asio::experimental::awaitable_operators;
    // Unregisters this connection however the coroutine ends.
    struct registration {
        output_server& srv;
        std::shared_ptr<client> c;
        registration(output_server& s, std::shared_ptr<client> cl) : srv(s), c(std::move(cl)) {}
        ~registration() {
            if (c->streaming) --srv.stats_.clients;
            --srv.stats_.connections;
            srv.clients_.remove(c);
        }
        registration(const registration&) = delete;
        registration& operator=(const registration&) = delete;
    } reg(*self, c);

    // Raw or HTTP: does the client say something within raw_detect? A readiness wake-up with nothing
    // to read is spurious (seen when the descriptor number was just reused): wait on; a peek of 0
    // bytes is the client closing.
    const auto detect_until = std::chrono::steady_clock::now() + self->cfg_.raw_detect;
    for (;;) {
        c->deadline.expires_at(detect_until);
        auto first = co_await (c->socket.async_wait(tcp::socket::wait_read, use_tuple) ||
                               c->deadline.async_wait(use_tuple));
        if (c->dead || self->stopping_) co_return;
        if (first.index() == 1) {
            self->start_streaming(*c, false);
            if (self->ended_) c->closing = true;
            co_await stream_to(self, c);
            co_return;
        }
        if (std::get<0>(std::get<0>(first))) co_return;
        char probe = 0;
        const auto n = ::recv(c->socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) break;                                        // a request: HTTP
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) co_return;  // gone
    }

    beast::flat_buffer buffer(self->cfg_.max_header_bytes);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(self->cfg_.max_header_bytes));
    c->deadline.expires_after(self->cfg_.read_timeout);
    auto read = co_await (http::async_read(c->socket, buffer, parser, use_tuple) || c->deadline.async_wait(use_tuple));
    if (c->dead || self->stopping_) co_return;
    beast::error_code ec;
    if (read.index() == 0) ec = std::get<0>(std::get<0>(read));
    else ec = beast::error::timeout;

    if (ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset)
            co_return;  // connected and left
        ++self->stats_.bad_requests;
        std::string response;
        if (ec == beast::error::timeout) response = error_response(408, "request not received in time");
        else if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
            response = error_response(400, "request header too large");
        else response = error_response(400, "malformed HTTP request");
        co_await reply(self, c, std::move(response));
        co_return;
    }

    ++self->stats_.http_requests;
    const auto& req = parser.get();
    const bool head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
        ++self->stats_.bad_requests;
        co_await reply(self, c, error_response(405, "only GET and HEAD are supported", false, "Allow: GET, HEAD\r\n"));
        co_return;
    }
    std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/stats") {
        const std::string body = self->stats_json_ ? self->stats_json_() : self->stats_json();
        co_await reply(self, c, simple_response(200, "application/json", body, head));
        co_return;
    }
    if (self->ended_) {
        ++self->stats_.bad_requests;
        co_await reply(self, c, error_response(503, "the stream has ended", head));
        co_return;
    }
    if (head) {
        std::span<const std::byte> hint;
        if (!self->headers_.empty()) hint = self->headers_.back()->payload;
        co_await reply(self, c, self->stream_response_head(hint, self->cfg_.http_chunked && req.version() == 11));
        co_return;
    }
    self->start_streaming(*c, true);
    c->chunked = self->cfg_.http_chunked && req.version() == 11;
    co_await stream_to(self, c);
}

// The writer of one player: gathered writes of queued chunks, each under a deadline.
asio::awaitable<void> output_server::stream_to(std::shared_ptr<output_server> self, std::shared_ptr<client> c) {
    using namespace asio::experimental::awaitable_operators;
    static constexpr std::string_view crlf = "\r\n";
    static constexpr std::string_view last_chunk = "0\r\n\r\n";
    std::string head;
    std::string size_line;
    std::vector<wire::chunk_ptr> batch;
    std::vector<asio::const_buffer> buffers;
    for (;;) {
        while (c->queue.empty() && !c->closing && !c->dead) {
            c->wake.expires_at(asio::steady_timer::time_point::max());
            co_await c->wake.async_wait(use_tuple);
        }
        if (c->dead) co_return;

        batch.clear();
        buffers.clear();
        if (c->http && !c->head_sent) {
            std::span<const std::byte> first;
            if (!c->queue.empty()) first = c->queue.front()->payload;
            head = self->stream_response_head(first, c->chunked);
            buffers.emplace_back(asio::buffer(head));
            c->head_sent = true;
        }
        std::size_t batch_bytes = 0;
        if (c->chunked && !c->queue.empty()) buffers.emplace_back();  // the chunk-size line, below
        while (!c->queue.empty() && batch.size() < max_batch_chunks &&
               (batch.empty() || batch_bytes + c->queue.front()->payload.size() <= max_batch_bytes)) {
            batch.push_back(std::move(c->queue.front()));
            c->queue.pop_front();
            batch_bytes += batch.back()->payload.size();
            buffers.emplace_back(asio::buffer(batch.back()->payload));
        }
        if (c->chunked && !batch.empty()) {
            size_line = fmt::format("{:x}\r\n", batch_bytes);
            buffers[buffers.size() - batch.size() - 1] = asio::buffer(size_line);
            buffers.emplace_back(asio::buffer(crlf));
        }
        const bool last = c->queue.empty() && c->closing;
        if (last && c->chunked) buffers.emplace_back(asio::buffer(last_chunk));

        if (!buffers.empty()) {
            c->deadline.expires_after(self->cfg_.write_timeout);
            auto written =
                co_await (asio::async_write(c->socket, buffers, use_tuple) || c->deadline.async_wait(use_tuple));
            if (c->dead) co_return;
            if (written.index() != 0) {
                ++self->stats_.dropped_slow;
                spdlog::info("stream: player write timed out: disconnected");
                self->drop(*c);
                co_return;
            }
            const auto [ec, n] = std::get<0>(written);
            self->stats_.bytes_sent += n;
            if (ec) {
                spdlog::debug("stream: player gone: {}", ec.message());
                self->drop(*c);
                co_return;
            }
            if (!batch.empty() && !self->stats_.first_byte) self->stats_.first_byte = core::clock::now();
            c->queued_bytes -= std::min(c->queued_bytes, batch_bytes);
        }
        if (last) {
            co_await close_gracefully(c);
            co_return;
        }
    }
}

asio::awaitable<void> output_server::reply(std::shared_ptr<output_server> self, std::shared_ptr<client> c,
                                           std::string response) {
    using namespace asio::experimental::awaitable_operators;
    c->deadline.expires_after(self->cfg_.write_timeout);
    auto written = co_await (asio::async_write(c->socket, asio::buffer(response), use_tuple) ||
                             c->deadline.async_wait(use_tuple));
    if (written.index() != 0 || std::get<0>(std::get<0>(written)) || c->dead) co_return;
    co_await close_gracefully(c);
}

// Sends EOF, then waits (briefly) for the player's: closing with unread input would reset the
// connection and could destroy the tail of the stream in flight.
asio::awaitable<void> output_server::close_gracefully(std::shared_ptr<client> c) {
    using namespace asio::experimental::awaitable_operators;
    boost::system::error_code ec;
    c->socket.shutdown(tcp::socket::shutdown_send, ec);
    if (!ec) {
        c->deadline.expires_after(linger_timeout);
        std::array<char, 4096> sink{};
        for (;;) {
            auto r = co_await (c->socket.async_read_some(asio::buffer(sink), use_tuple) || c->deadline.async_wait(use_tuple));
            if (r.index() != 0 || std::get<0>(std::get<0>(r)) || c->dead) break;
        }
    }
    c->socket.close(ec);
}

}  // namespace pixtream::stream
