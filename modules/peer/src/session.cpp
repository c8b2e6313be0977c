#include "session.hpp"

#include "pixtream/net/net.hpp"

#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace pixtream::peer {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_size = 64 * 1024;
constexpr core::duration write_timeout = core::seconds(30);

}  // namespace

session::session(std::shared_ptr<node> owner, tcp::socket socket, bool outgoing)
    : owner_(std::move(owner)),
      socket_(std::move(socket)),
      writer_wake_(socket_.get_executor()),
      outgoing_(outgoing),
      decoder_(wire::max_handshake_frame),
      rules_(owner_->cfg_.channel, owner_->cfg_.self),
      remote_ip_(net::remote_address(socket_)) {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
}

asio::awaitable<void> session::run(std::shared_ptr<session> self) {
    wire::handshake h;
    h.flags = self->owner_->cfg_.is_source ? wire::handshake::flag_source : std::uint8_t{0};
    h.channel = self->owner_->cfg_.channel;
    h.peer = self->owner_->cfg_.self;
    h.listen_port = self->owner_->advertised_port();
    self->send(h);
    asio::co_spawn(self->socket_.get_executor(), writer(self),
                   net::log_errors("peer: writer for " + self->remote_ip_,
                                   [self](const std::exception& ex) { self->close(ex.what()); }));
    co_await reader(self);
    self->close(self->close_reason_.empty() ? "reader ended" : self->close_reason_);
    self->owner_->on_closed(self);
}

void session::close(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    close_reason_ = why;
    spdlog::debug("peer: closing connection to {}:{} ({})", remote_ip_, remote_port_, why);
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    writer_wake_.cancel();
    drop_queued();
}

void session::drop_queued() noexcept {
    for (const auto& u : uploads_) owner_->upload_queued_bytes_ -= u.bytes;
    for (const auto& c : pushes_) owner_->upload_queued_bytes_ -= wire::frame_size(*c);
    uploads_.clear();
    pushes_.clear();
}

void session::notify_writer() noexcept {
    writer_woken_ = true;
    writer_wake_.cancel();
}

void session::send(const wire::message& m) {
    if (closed_) return;
    std::vector<std::byte> bytes;
    wire::encode(m, bytes);
    control_bytes_ += bytes.size() + control_entry_overhead;
    control_.push_back(std::move(bytes));
    if (control_bytes_ > max_control_bytes) {
        close("neighbour does not read: send queue overflow");
        return;
    }
    notify_writer();
}

void session::push(wire::chunk_ptr c) {
    if (closed_ || pushes_.size() >= max_pushes) return;
    remote_map_.advance_to_fit(c->id);
    remote_map_.set(c->id);
    owner_->upload_queued_bytes_ += wire::frame_size(*c);
    pushes_.push_back(std::move(c));
    notify_writer();
}

void session::violation(const std::string& why) {
    // Before the handshake there is no identity to ban (and on one host every peer shares the IP).
    if (established_ && !closed_) {
        owner_->ban(shared_from_this(), why);
    } else {
        close(why);
    }
}

void session::requested(core::chunk_id id) {
    if (uploads_.size() >= wire::max_requests_in_flight && ++excess_requests_ > max_excess_requests) {
        // A well-behaved neighbour never has more than max_requests_in_flight outstanding here.
        ++owner_->stats_.protocol_errors;
        violation("request flood: more than " + std::to_string(wire::max_requests_in_flight) + " requests outstanding, " +
                  std::to_string(excess_requests_) + " times");
        return;
    }
    const auto c = owner_->store_.get(id);
    if (closed_ || !c || uploads_.size() >= wire::max_requests_in_flight || owner_->upload_saturated() ||
        !owner_->may_serve(id)) {
        ++owner_->stats_.rejects_sent;
        send(wire::reject{id});
        return;
    }
    const auto bytes = wire::frame_size(*c);
    owner_->upload_queued_bytes_ += bytes;
    uploads_.push_back({id, bytes});
    notify_writer();
}

void session::cancelled(core::chunk_id id) {
    if (pacing_ == id) pacing_cancelled_ = true;
    const auto it = std::find_if(uploads_.begin(), uploads_.end(), [id](const queued_upload& u) { return u.id == id; });
    if (it == uploads_.end()) return;
    owner_->upload_queued_bytes_ -= it->bytes;
    uploads_.erase(it);
}

bool session::next_frame(outgoing_frame& out) {
    if (!control_.empty()) {
        out.bytes = std::move(control_.front());
        control_.pop_front();
        control_bytes_ -= out.bytes.size() + control_entry_overhead;
        return true;
    }
    // The source's pushes first: they are how fresh chunks enter the swarm at all.
    if (!pushes_.empty()) {
        out.chunk = std::move(pushes_.front());
        pushes_.pop_front();
        owner_->upload_queued_bytes_ -= wire::frame_size(*out.chunk);
        return true;
    }
    if (!uploads_.empty()) {
        const auto u = uploads_.front();
        uploads_.pop_front();
        owner_->upload_queued_bytes_ -= u.bytes;
        if (auto c = owner_->store_.get(u.id)) {
            out.chunk = std::move(c);
            out.requested = true;
            return true;
        }
        ++owner_->stats_.rejects_sent;  // evicted since it was asked for
        wire::encode(wire::reject{u.id}, out.bytes);
        return true;
    }
    return false;
}

asio::awaitable<void> session::writer(std::shared_ptr<session> self) {
    auto& node = *self->owner_;
    asio::steady_timer pace(self->socket_.get_executor());
    asio::steady_timer deadline(self->socket_.get_executor());
    self->last_sent_ = core::clock::now();
    while (!self->closed_) {
        outgoing_frame f;
        if (!self->next_frame(f)) {
            if (self->writer_woken_) {
                self->writer_woken_ = false;
                continue;
            }
            self->writer_wake_.expires_at(self->last_sent_ + wire::keepalive_interval);
            co_await self->writer_wake_.async_wait(use_tuple);
            if (self->closed_) break;
            if (self->writer_woken_) {
                self->writer_woken_ = false;
                continue;
            }
            if (core::clock::now() >= self->last_sent_ + wire::keepalive_interval) self->send(wire::keepalive{});
            continue;
        }
        std::size_t size = 0;
        bool ok = true;
        if (f.chunk) {
            size = wire::frame_size(*f.chunk);
            const auto wait = node.upload_bucket_.reserve(static_cast<double>(size), core::clock::now());
            if (wait > core::duration::zero()) {
                self->pacing_ = f.requested ? std::optional(f.chunk->id) : std::nullopt;
                self->pacing_cancelled_ = false;
                pace.expires_after(wait);
                co_await pace.async_wait(use_tuple);
                self->pacing_.reset();
                if (self->closed_) break;
                if (self->pacing_cancelled_) {  // no longer wanted: give the upload time to others
                    node.upload_bucket_.refund(static_cast<double>(size), core::clock::now());
                    continue;
                }
            }
            const auto prefix = wire::encode_chunk_prefix(*f.chunk);
            const std::array<asio::const_buffer, 3> parts{asio::buffer(prefix),
                                                          asio::buffer(f.chunk->payload.data(), f.chunk->payload.size()),
                                                          asio::buffer(f.chunk->sig)};
            deadline.expires_after(write_timeout);
            auto r = co_await (asio::async_write(self->socket_, parts, use_tuple) || deadline.async_wait(use_tuple));
            ok = r.index() == 0 && !std::get<0>(std::get<0>(r));
            if (ok) {
                node.stats_.payload_bytes_out += f.chunk->payload.size();
                ++node.stats_.chunks_out;
                self->remote_map_.advance_to_fit(f.chunk->id);
                self->remote_map_.set(f.chunk->id);
            }
        } else {
            size = f.bytes.size();
            deadline.expires_after(write_timeout);
            auto r = co_await (asio::async_write(self->socket_, asio::buffer(f.bytes), use_tuple) ||
                               deadline.async_wait(use_tuple));
            ok = r.index() == 0 && !std::get<0>(std::get<0>(r));
        }
        if (!ok) {
            self->close("write failed or timed out");
            break;
        }
        node.stats_.wire_bytes_out += size;
        node.up_meter_.add(size, core::clock::now());
        self->last_sent_ = core::clock::now();
    }
}

asio::awaitable<void> session::reader(std::shared_ptr<session> self) {
    auto& node = *self->owner_;
    asio::steady_timer timer(self->socket_.get_executor());
    // The handshake has a deadline from connecting (a byte at a time must not keep a slot forever);
    // afterwards, every read gets the idle timeout.
    const auto handshake_deadline = core::clock::now() + wire::handshake_timeout;
    while (!self->closed_) {
        auto buf = self->decoder_.prepare(read_size);
        if (self->established_) {
            timer.expires_after(wire::idle_timeout);
        } else {
            timer.expires_at(handshake_deadline);
        }
        auto r = co_await (self->socket_.async_read_some(asio::buffer(buf.data(), buf.size()), use_tuple) ||
                           timer.async_wait(use_tuple));
        if (r.index() == 1) {
            self->close(self->established_ ? "idle timeout" : "handshake timeout");
            break;
        }
        const auto [ec, n] = std::get<0>(r);
        if (ec) {
            self->close(ec == asio::error::eof ? "closed by neighbour" : ec.message());
            break;
        }
        self->decoder_.commit(n);
        node.stats_.wire_bytes_in += n;
        node.down_meter_.add(n, core::clock::now());
        std::error_code dec;
        while (!self->closed_) {
            auto m = self->decoder_.next(dec);
            if (!m) break;
            if (auto err = self->rules_.on_receive(*m)) {
                ++node.stats_.protocol_errors;
                self->violation("protocol error: " + err.message());
                break;
            }
            if (!self->established_) {
                const auto& h = *self->rules_.remote();
                self->remote_id_ = h.peer;
                self->remote_port_ = h.listen_port;
                self->remote_is_source_ = h.is_source();
                self->established_ = true;
                self->decoder_.set_max_frame(wire::max_frame_size);
                if (!node.admit(self)) {
                    self->close("not admitted");
                    break;
                }
                self->send(wire::bitmap::from(node.store_.map()));
                continue;
            }
            node.on_message(self, *m);
        }
        if (dec) {
            ++node.stats_.protocol_errors;
            self->violation("protocol error: " + dec.message());
        }
    }
}

}  // namespace pixtream::peer
