#include "connection.hpp"

#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>

namespace pixtream::hostile {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t max_held = 4096;
constexpr auto unread_poll = std::chrono::milliseconds(50);

}  // namespace

connection::connection(const asio::any_io_executor& ex, std::string attack, std::string phase, int index,
                       const core::peer_id& id)
    : socket_(ex), timer_(ex), attack_(std::move(attack)), phase_(std::move(phase)), index_(index), id_(id) {}

asio::awaitable<bool> connection::connect(tcp::endpoint victim, clock::duration timeout, std::optional<int> rcvbuf) {
    boost::system::error_code ec;
    socket_.open(victim.protocol(), ec);
    if (!ec && rcvbuf) socket_.set_option(asio::socket_base::receive_buffer_size(*rcvbuf), ec);
    if (ec) {
        set_error("socket: " + ec.message());
        co_return false;
    }
    timer_.expires_after(timeout);
    auto r = co_await (socket_.async_connect(victim, use_tuple) || timer_.async_wait(use_tuple));
    if (r.index() == 1) {
        set_error("connect: timed out");
        close();
        co_return false;
    }
    if (const auto [cec] = std::get<0>(r); cec) {
        set_error("connect: " + cec.message());
        close();
        co_return false;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    connected_ = true;
    started_ = clock::now();
    last_send_ = started_;
    co_return true;
}

void connection::close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
}

void connection::on_closed(std::string why) {
    if (closed_) return;
    closed_ = true;
    closed_at_ = clock::now();
    close_reason_ = std::move(why);
}

asio::awaitable<bool> connection::send(std::span<const std::byte> bytes, clock::time_point deadline) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        if (closed_ || !socket_.is_open()) co_return false;
        boost::system::error_code ec;
        const auto n = socket_.write_some(asio::buffer(bytes.data() + done, bytes.size() - done), ec);
        done += n;
        bytes_sent_ += n;
        if (n > 0) last_send_ = clock::now();
        if (!ec) continue;
        if (ec != asio::error::would_block && ec != asio::error::try_again && ec != asio::error::interrupted) {
            // EPIPE / ECONNRESET: the victim closed (and our data was refused).
            on_closed(ec == asio::error::broken_pipe ? "closed (write: broken pipe)" : "write: " + ec.message());
            co_return false;
        }
        if (clock::now() >= deadline) {
            set_error("send: the victim stopped reading (deadline passed)");
            co_return false;
        }
        timer_.expires_at(deadline);
        auto r = co_await (socket_.async_wait(tcp::socket::wait_write, use_tuple) || timer_.async_wait(use_tuple));
        if (r.index() == 1) {
            set_error("send: the victim stopped reading (deadline passed)");
            co_return false;
        }
    }
    co_return true;
}

bool connection::read_available() {
    bool any = false;
    for (;;) {
        boost::system::error_code ec;
        std::size_t n = 0;
        if (decode_error_.empty()) {
            auto buf = decoder_.prepare(read_size);
            n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
            decoder_.commit(ec ? 0 : n);
        } else {
            // The victim sent something undecodable: keep reading (to see it close), decode no more.
            std::array<std::byte, 4096> scratch;
            n = socket_.read_some(asio::buffer(scratch), ec);
        }
        if (ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::interrupted) return any;
        if (ec) {
            on_closed(ec == asio::error::eof ? "eof" : ec == asio::error::connection_reset ? "reset" : ec.message());
            return true;
        }
        any = true;
        bytes_received_ += n;
        std::error_code dec;
        while (decode_error_.empty()) {
            auto m = decoder_.next(dec);
            if (!m) break;
            on_message(*m);
        }
        if (dec) decode_error_ = dec.message();
        // Hand control back now and then: other connections share this thread.
        if (n < read_size) return any;
    }
}

void connection::on_message(const wire::message& m) {
    ++counts_[static_cast<std::size_t>(wire::type_of(m))];
    auto saw = [this](core::chunk_id id) {
        if (!edge_ || id > *edge_) edge_ = id;
    };
    if (const auto* b = std::get_if<wire::bitmap>(&m)) {
        held_.clear();
        for (std::size_t i = 0; i < b->bit_count; ++i) {
            if (b->test(b->base + i)) {
                held_.push_back(b->base + i);
                saw(b->base + i);
            }
        }
    } else if (const auto* h = std::get_if<wire::have>(&m)) {
        held_.push_back(h->id);
        if (held_.size() > max_held) held_.erase(held_.begin());
        saw(h->id);
    } else if (const auto* c = std::get_if<wire::chunk>(&m)) {
        saw(c->id);
        if (!largest_ || c->payload.size() > largest_->second) largest_ = {c->id, c->payload.size()};
    }
}

asio::awaitable<bool> connection::read_until(std::function<bool()> done, clock::time_point deadline) {
    while (!closed_ && socket_.is_open()) {
        if (done()) co_return true;
        if (read_available()) continue;
        if (clock::now() >= deadline) break;
        timer_.expires_at(deadline);
        auto r = co_await (socket_.async_wait(tcp::socket::wait_read, use_tuple) || timer_.async_wait(use_tuple));
        if (r.index() == 1) {
            read_available();
            break;
        }
    }
    co_return done();
}

asio::awaitable<void> connection::wait_closed_unread(clock::time_point deadline,
                                                     std::optional<clock::duration> keepalive) {
    std::vector<std::byte> ka;
    wire::encode(wire::keepalive{}, ka);
    while (!closed_ && socket_.is_open() && clock::now() < deadline) {
        tcp_info info{};
        socklen_t len = sizeof info;
        if (::getsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
            set_error("getsockopt(TCP_INFO) failed");
            co_return;
        }
        if (info.tcpi_state != TCP_ESTABLISHED) {
            on_closed(info.tcpi_state == TCP_CLOSE_WAIT ? "eof (seen unread)" : "reset (seen unread)");
            co_return;
        }
        if (keepalive && clock::now() >= last_send_ + *keepalive && !co_await send(ka, deadline)) co_return;
        timer_.expires_at(std::min(deadline, clock::now() + unread_poll));
        co_await timer_.async_wait(use_tuple);
    }
}

std::size_t connection::unread_bytes() {
    int n = 0;
    if (::ioctl(socket_.native_handle(), FIONREAD, &n) != 0 || n < 0) return 0;
    return static_cast<std::size_t>(n);
}

boost::json::object connection::report() const {
    boost::json::object messages;
    for (std::size_t t = 0; t < counts_.size(); ++t) {
        if (counts_[t] != 0) messages[wire::name_of(static_cast<wire::message_type>(t))] = counts_[t];
    }
    boost::json::object j{
        {"attack", attack_},
        {"connection", index_},
        {"peer_id", id_.to_hex()},
        {"connected", connected_},
        {"bytes_sent", bytes_sent_},
        {"bytes_received", bytes_received_},
        {"victim_handshake", victim_handshake()},
        {"admitted", admitted()},
        {"victim_closed", closed_},
        {"kept", connected_ && !closed_},
        {"closed_after_s", closed_at_ ? boost::json::value(seconds_since(started_, *closed_at_)) : nullptr},
        {"closed_after_attack_s",
         closed_at_ && attack_at_ ? boost::json::value(seconds_since(*attack_at_, *closed_at_)) : nullptr},
        {"close_reason", close_reason_},
        {"messages", messages},
        {"decode_error", decode_error_},
        {"error", error_},
        {"details", details_},
    };
    if (!phase_.empty()) j["phase"] = phase_;
    if (edge_) j["live_edge"] = edge_->value();
    return j;
}

}  // namespace pixtream::hostile
