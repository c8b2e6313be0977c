#include "pixtream/tracker/server.hpp"

#include "pixtream/net/net.hpp"
#include "pixtream/tracker/http_api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

namespace pixtream::tracker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Status and reason for a request that could not be read.
std::optional<http_reply> read_failure_reply(const beast::error_code& ec) {
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
        return error_reply(400, "request header too large");
    if (ec == http::error::body_limit) return error_reply(413, "request body too large");
    if (ec == beast::error::timeout) return error_reply(408, "request not received in time");
    if (ec.category() == beast::error_code(http::error::bad_method).category()) return error_reply(400, "malformed HTTP request");
    return std::nullopt;  // the connection failed: nothing to answer
}

}  // namespace

server::server(const asio::any_io_executor& ex, const tcp::endpoint& at, registry_config rcfg, server_config scfg)
    : acceptor_(ex), expiry_timer_(ex), registry_(rcfg), cfg_(scfg), started_(core::clock::now()) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

tcp::endpoint server::local_endpoint() const { return acceptor_.local_endpoint(); }

void server::stop() {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    expiry_timer_.cancel();
}

asio::awaitable<void> server::run() {
    auto self = shared_from_this();
    asio::co_spawn(acceptor_.get_executor(), expire_loop(self),
                   net::log_errors("tracker: peer expiry"));
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (ec) {
            if (stopping_ || ec == asio::error::operation_aborted) break;
            spdlog::warn("tracker: accept failed: {}", ec.message());
            continue;  // for example too many open files: keep serving the connections we have
        }
        if (counters_.connections >= cfg_.max_connections) {
            ++counters_.refused_connections;
            continue;  // the socket closes as it goes out of scope
        }
        asio::co_spawn(acceptor_.get_executor(), serve(self, std::move(socket)),
                       net::log_errors("tracker: connection"));
    }
}

asio::awaitable<void> server::expire_loop(std::shared_ptr<server> self) {
    while (!self->stopping_) {
        self->expiry_timer_.expires_after(self->cfg_.expiry_period);
        auto [ec] = co_await self->expiry_timer_.async_wait(use_tuple);
        if (ec || self->stopping_) break;
        self->registry_.expire(core::clock::now());
    }
}

asio::awaitable<void> server::serve(std::shared_ptr<server> self, tcp::socket socket) {
    using namespace asio::experimental::awaitable_operators;
    // Counts this connection while the coroutine lives, however it ends.
    struct connection_count {
        std::size_t& n;
        explicit connection_count(std::size_t& c) : n(c) { ++n; }
        ~connection_count() { --n; }
        connection_count(const connection_count&) = delete;
        connection_count& operator=(const connection_count&) = delete;
    } counted(self->counters_.connections);

    const std::string ip = net::remote_address(socket, "0.0.0.0");
    asio::steady_timer deadline(socket.get_executor());
    // Holds at most one request's header (the body limit is checked by the parser).
    beast::flat_buffer buffer(self->cfg_.max_header_bytes + self->cfg_.max_body_bytes);
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(self->cfg_.max_header_bytes));
        parser.body_limit(self->cfg_.max_body_bytes);
        // The whole request must arrive before the deadline. A timer race (not a socket timeout)
        // leaves the socket open, so a slow client still gets its 408.
        deadline.expires_after(self->cfg_.read_timeout);
        auto read = co_await (http::async_read(socket, buffer, parser, use_tuple) || deadline.async_wait(use_tuple));
        beast::error_code rec;
        if (read.index() == 0) rec = std::get<0>(std::get<0>(read));
        else rec = beast::error::timeout;

        http_reply reply;
        bool keep_alive = false;
        if (rec) {
            if (rec == http::error::end_of_stream || rec == asio::error::eof) break;  // the client is done
            if (rec == beast::error::timeout) {
                ++self->counters_.timeouts;
                // An idle keep-alive connection that sent nothing just closes.
                if (!parser.got_some() && buffer.size() == 0) break;
            }
            const auto r = read_failure_reply(rec);
            if (!r) break;
            reply = *r;
        } else {
            ++self->counters_.http_requests;
            const auto& req = parser.get();
            reply = handle_request(req.method_string(), req.target(), ip, self->registry_, self->counters_,
                                   core::clock::now(), core::clock::now() - self->started_);
            keep_alive = req.keep_alive();
        }
        if (reply.status >= 400) {
            ++self->counters_.bad_requests;
            keep_alive = false;  // a client that sent one bad request gets no further benefit of the doubt
        }

        http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
        res.set(http::field::server, "pixtream-tracker");
        res.set(http::field::content_type, reply.content_type);
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(keep_alive);
        res.body() = std::move(reply.body);
        res.prepare_payload();
        deadline.expires_after(self->cfg_.write_timeout);
        auto written = co_await (http::async_write(socket, res, use_tuple) || deadline.async_wait(use_tuple));
        if (written.index() != 0 || std::get<0>(std::get<0>(written)) || !keep_alive) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace pixtream::tracker
