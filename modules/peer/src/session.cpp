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

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

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
constexpr core::duration kernel_poll = core::milliseconds(5);  // re-check of the kernel queues' budget
constexpr core::duration slot_patience = core::milliseconds(500);  // a socket not writable this long frees the slot

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
    const int lowat = static_cast<int>(owner_->cfg_.kernel_unsent_bytes);
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
}

std::optional<core::chunk_id> session::next_upload() const noexcept {
    if (!pushes_.empty()) return pushes_.front()->id;
    if (!uploads_.empty()) {
        // Its freshest requested chunk decides its turn, and is what it sends next.
        return std::max_element(uploads_.begin(), uploads_.end(),
                                [](const queued_upload& a, const queued_upload& b) { return a.id < b.id; })
            ->id;
    }
    return std::nullopt;
}

std::size_t session::kernel_unsent() const noexcept {
    int n = 0;
    if (closed_ || ::ioctl(const_cast<tcp::socket&>(socket_).native_handle(), SIOCOUTQNSD, &n) != 0 || n < 0) return 0;
    return static_cast<std::size_t>(n);
}

std::size_t session::kernel_outstanding() const noexcept {
    int n = 0;
    if (closed_ || ::ioctl(const_cast<tcp::socket&>(socket_).native_handle(), SIOCOUTQ, &n) != 0 || n < 0) return 0;
    return static_cast<std::size_t>(n);
}

core::duration session::rtt() const noexcept {
    ::tcp_info info{};
    socklen_t len = sizeof info;
    if (closed_ || ::getsockopt(const_cast<tcp::socket&>(socket_).native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
        return core::duration::zero();
    }
    return std::chrono::duration_cast<core::duration>(core::microseconds(info.tcpi_rtt));
}

std::uint64_t session::take_delivered() noexcept {
    int queued = 0;
    if (closed_ || ::ioctl(socket_.native_handle(), SIOCOUTQ, &queued) != 0 || queued < 0) return 0;
    const auto q = static_cast<std::uint64_t>(queued);
    const std::uint64_t delivered = bytes_written_ > q ? bytes_written_ - q : 0;
    const std::uint64_t delta = delivered > delivered_seen_ ? delivered - delivered_seen_ : 0;
    delivered_seen_ = std::max(delivered_seen_, delivered);
    return delta;
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
    give_up_slot();
}

void session::drop_queued() noexcept {
    for (const auto& u : uploads_) owner_->upload_queued_bytes_ -= u.bytes;
    for (const auto& c : pushes_) owner_->upload_queued_bytes_ -= wire::frame_size(*c);
    uploads_.clear();
    pushes_.clear();
    owner_->forget_slot_waiter(this);
}

void session::give_up_slot() noexcept {
    if (!holds_slot_) return;
    holds_slot_ = false;
    owner_->release_upload_slot();
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
    const bool is_reject = std::holds_alternative<wire::reject>(m);
    control_is_reject_.push_back(is_reject);
    if (is_reject) ++queued_rejects_;
    if (control_bytes_ > max_control_bytes) {
        close("neighbour does not read: send queue overflow");
        return;
    }
    notify_writer();
}

bool session::push(wire::chunk_ptr c) {
    if (closed_ || pushes_.size() >= max_pushes) return false;
    remote_map_.advance_to_fit(c->id);
    remote_map_.set(c->id);
    owner_->upload_queued_bytes_ += wire::frame_size(*c);
    pushes_.push_back(std::move(c));
    notify_writer();
    return true;
}

void session::drop_push(core::chunk_id id) noexcept {
    const auto it = std::find_if(pushes_.begin(), pushes_.end(), [id](const wire::chunk_ptr& c) { return c->id == id; });
    if (it == pushes_.end()) return;
    owner_->upload_queued_bytes_ -= wire::frame_size(**it);
    pushes_.erase(it);
    if (pushes_.empty() && uploads_.empty()) owner_->forget_slot_waiter(this);
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
    // Unanswered requests: queued uploads and REJECTs not yet written (a neighbour that does not read
    // its answers cannot hide a flood behind our REJECTs).
    if (uploads_.size() + queued_rejects_ >= wire::max_requests_in_flight && ++excess_requests_ > max_excess_requests) {
        // A well-behaved neighbour never has more than max_requests_in_flight outstanding here.
        ++owner_->stats_.protocol_errors;
        violation("request flood: more than " + std::to_string(wire::max_requests_in_flight) + " requests outstanding, " +
                  std::to_string(excess_requests_) + " times");
        return;
    }
    const auto c = owner_->store_.get(id);
    // Over the backlog bound, a fresher chunk still gets in by displacing the stalest ones queued anywhere
    // in the node (REJECTed, so their requesters ask elsewhere): the queue stays bounded and fresh.
    // The cheap refusals come first, so that a request refused anyway displaces nothing.
    if (closed_ || !c || uploads_.size() >= wire::max_requests_in_flight ||
        (owner_->upload_saturated() && !owner_->make_room_for(id)) || !owner_->may_serve(id) ||
        !owner_->within_budget(id)) {
        ++owner_->stats_.rejects_sent;
        spdlog::trace("peer: reject {} to {}:{}", id.value(), remote_ip_, remote_port_);
        send(wire::reject{id});
        return;
    }
    spdlog::trace("peer: request {} from {}:{} queued", id.value(), remote_ip_, remote_port_);
    const auto bytes = wire::frame_size(*c);
    owner_->upload_queued_bytes_ += bytes;
    uploads_.push_back({id, bytes});
    notify_writer();
}

std::optional<core::chunk_id> session::stalest_upload() const noexcept {
    if (uploads_.empty()) return std::nullopt;
    return std::min_element(uploads_.begin(), uploads_.end(),
                            [](const queued_upload& a, const queued_upload& b) { return a.id < b.id; })
        ->id;
}

std::size_t session::queued_bytes_before(core::chunk_id id) const noexcept {
    std::size_t n = 0;
    for (const auto& u : uploads_) n += u.id < id ? u.bytes : 0;
    return n;
}

void session::displace(core::chunk_id id) {
    const auto it = std::find_if(uploads_.begin(), uploads_.end(), [id](const queued_upload& u) { return u.id == id; });
    if (it == uploads_.end()) return;
    owner_->upload_queued_bytes_ -= it->bytes;
    uploads_.erase(it);
    ++owner_->stats_.rejects_sent;
    send(wire::reject{id});
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
        // Every control frame queued goes in one write: one TCP segment (TCP_NODELAY) instead of one each,
        // whose headers would cost a thin uplink more than the frames (and each one an ACK back).
        out.bytes.clear();
        while (!control_.empty()) {
            out.bytes.insert(out.bytes.end(), control_.front().begin(), control_.front().end());
            control_bytes_ -= control_.front().size() + control_entry_overhead;
            if (control_is_reject_.front()) --queued_rejects_;
            control_.pop_front();
            control_is_reject_.pop_front();
        }
        return true;
    }
    // The source's pushes first: they are how fresh chunks enter the swarm at all.
    if (!pushes_.empty()) {
        if (!owner_->take_upload_slot(this)) return false;  // woken when it is our turn
        holds_slot_ = true;
        out.chunk = std::move(pushes_.front());
        pushes_.pop_front();
        owner_->upload_queued_bytes_ -= wire::frame_size(*out.chunk);
        return true;
    }
    // Requested chunks: the upload slot goes to pushes first anywhere in the node (node::next_slot_holder).
    while (!uploads_.empty()) {
        // The freshest requested chunk first (see node::next_slot_holder).
        const auto pick = std::max_element(uploads_.begin(), uploads_.end(),
                                           [](const queued_upload& a, const queued_upload& b) { return a.id < b.id; });
        std::iter_swap(pick, uploads_.begin());
        const auto u = uploads_.front();
        auto c = owner_->store_.get(u.id);
        if (!c) {
            uploads_.pop_front();
            owner_->upload_queued_bytes_ -= u.bytes;
            ++owner_->stats_.rejects_sent;  // evicted since it was asked for
            wire::encode(wire::reject{u.id}, out.bytes);
            return true;
        }
        if (!owner_->take_upload_slot(this)) return false;  // woken when it is our turn
        holds_slot_ = true;
        uploads_.pop_front();
        owner_->upload_queued_bytes_ -= u.bytes;
        out.chunk = std::move(c);
        out.requested = true;
        return true;
    }
    owner_->forget_slot_waiter(this);  // nothing to upload (now): do not hold up the others
    return false;
}

asio::awaitable<void> session::writer(std::shared_ptr<session> self) {
    auto& node = *self->owner_;
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
            spdlog::trace("peer: sending {} to {}:{}", f.chunk->id.value(), self->remote_ip_, self->remote_port_);
            const auto result = co_await write_chunk(self, f.chunk, f.requested);
            spdlog::trace("peer: sent {} to {}:{}", f.chunk->id.value(), self->remote_ip_, self->remote_port_);
            self->give_up_slot();
            if (result == write_result::cancelled) continue;
            ok = result == write_result::written;
            if (self->closed_) break;
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
            if (ok) self->bytes_written_ += size;
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

asio::awaitable<session::write_result> session::write_chunk(std::shared_ptr<session> self, wire::chunk_ptr c,
                                                            bool requested) {
    auto& node = *self->owner_;
    asio::steady_timer pace(self->socket_.get_executor());
    asio::steady_timer deadline(self->socket_.get_executor());
    const auto prefix = wire::encode_chunk_prefix(*c);
    const std::array<asio::const_buffer, 3> parts{asio::buffer(prefix), asio::buffer(c->payload.data(), c->payload.size()),
                                                  asio::buffer(c->sig)};
    const std::size_t total = asio::buffer_size(parts);
    std::size_t done = 0;
    // Until its first slice is written, a requested chunk can still be CANCELled (and not sent).
    self->pacing_ = requested ? std::optional(c->id) : std::nullopt;
    self->pacing_cancelled_ = false;
    struct clear_pacing {
        session* s;
        ~clear_pacing() { s->pacing_.reset(); }
    } clear{self.get()};
    while (done < total) {
        // The kernel takes more once its unsent bytes are below TCP_NOTSENT_LOWAT. A neighbour that reads
        // slowly must not hold the node's upload slot: after slot_patience the frame is finished without it.
        deadline.expires_after(self->holds_slot_ ? slot_patience : write_timeout);
        auto w = co_await (self->socket_.async_wait(tcp::socket::wait_write, use_tuple) || deadline.async_wait(use_tuple));
        if (!self->closed_ && w.index() == 1 && self->holds_slot_) {
            self->give_up_slot();
            deadline.expires_after(write_timeout - slot_patience);
            w = co_await (self->socket_.async_wait(tcp::socket::wait_write, use_tuple) || deadline.async_wait(use_tuple));
        }
        if (self->closed_ || w.index() != 0 || std::get<0>(std::get<0>(w))) co_return write_result::failed;
        const std::size_t slice = std::min(total - done, std::max<std::size_t>(node.uplink_.burst_bytes(), 1024));
        // Keep what the kernel holds to about a round trip of the uplink: this socket's queue plus what
        // the others have in flight (their unsent bytes do not load the uplink: a neighbour that stops
        // reading must not hold up everyone). Bounded: the write timeout ends a wait that never clears.
        const auto budget_deadline = core::clock::now() + write_timeout;
        while (!self->closed_ && static_cast<double>(node.kernel_in_flight_total() + self->kernel_unsent() + slice) >
                                     node.uplink_.kernel_budget(self->rtt(), core::clock::now())) {
            if (core::clock::now() > budget_deadline) co_return write_result::failed;
            pace.expires_after(kernel_poll);
            co_await pace.async_wait(use_tuple);
        }
        if (self->closed_) co_return write_result::failed;
        if (done == 0 && requested && self->pacing_cancelled_) co_return write_result::cancelled;
        const auto wait = node.upload_bucket_.reserve(static_cast<double>(slice), core::clock::now());
        if (wait > core::duration::zero()) {
            pace.expires_after(wait);
            co_await pace.async_wait(use_tuple);
            if (self->closed_) co_return write_result::failed;
            if (done == 0 && requested && self->pacing_cancelled_) {  // no longer wanted: give the upload time to others
                node.upload_bucket_.refund(static_cast<double>(slice), core::clock::now());
                co_return write_result::cancelled;
            }
        }
        if (done == 0) self->pacing_.reset();  // the frame begins: it is finished whatever comes
        // The slice [done, done + slice) of the three parts.
        std::array<asio::const_buffer, 3> sub{};
        std::size_t n = 0;
        std::size_t skip = done;
        std::size_t want = slice;
        for (const auto& p : parts) {
            if (want == 0) break;
            if (skip >= p.size()) {
                skip -= p.size();
                continue;
            }
            const std::size_t take = std::min(p.size() - skip, want);
            sub[n++] = asio::buffer(static_cast<const std::byte*>(p.data()) + skip, take);
            skip = 0;
            want -= take;
        }
        deadline.expires_after(write_timeout);
        auto r = co_await (asio::async_write(self->socket_, std::span(sub.data(), n), use_tuple) ||
                           deadline.async_wait(use_tuple));
        if (r.index() != 0 || std::get<0>(std::get<0>(r))) co_return write_result::failed;
        done += slice;
        self->bytes_written_ += slice;
    }
    co_return write_result::written;
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
                self->send(wire::bitmap::from(node.advertised_map()));
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
