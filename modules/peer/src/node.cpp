#include "pixtream/peer/node.hpp"

#include "pixtream/net/net.hpp"
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/signing.hpp"
#include "session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pixtream::peer {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr core::duration pump_period = core::milliseconds(100);
constexpr core::duration probe_timeout = core::seconds(3);
constexpr core::duration header_retry = core::seconds(1);
constexpr core::duration uplink_sample_period = core::milliseconds(50);
// The chunk interval is measured over at least this many ids (and at most interval_max_span);
// the join fetches this many chunks below the live edge first.
constexpr std::size_t interval_min_span = 4;
constexpr std::size_t interval_max_span = 32;
// Joining when the swarm delivers the live edge late: lag = the newest chunk's age + this.
constexpr core::duration join_margin = core::milliseconds(500);
// Source: the upload budget may be spent a second ahead, and at least two full-size chunks at once.
constexpr double budget_min_burst = 2.0 * (64 * 1024 + 256);
// A HAVE's chunk is available to us one round trip plus about this much (its transfer) later.
constexpr core::duration fetch_transfer = core::milliseconds(50);
// A deferred chunk (its push is expected) is requested at the latest this long before its deadline.
constexpr core::duration defer_margin = core::milliseconds(300);
// The stream's rate is the mean chunk of the newest this many (for the push trees' capacity).
constexpr std::size_t stream_rate_chunks = 32;
// Source: aged chunks are announced in batches this far apart (their HAVEs share a segment).
constexpr core::duration aged_batch = core::milliseconds(750);
// Viewer: a chunk is announced to the source only while it is this close to the live edge (the
// source holds it anyway; the early HAVEs tell it how fast its push spread, see seed_picker, and
// every later one would cost the source's thin uplink an ACK).
constexpr double source_have_window_s = 1.0;

swarm::uplink_config uplink_config_of(const node_config& cfg) {
    swarm::uplink_config u;
    u.max_rate = cfg.upload_limit;
    u.max_backlog = cfg.max_upload_backlog;
    return u;
}

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::string endpoint_key(const std::string& ip, std::uint16_t port) { return ip + ":" + std::to_string(port); }

}  // namespace

node::node(const asio::any_io_executor& ex, node_config cfg)
    : cfg_(std::move(cfg)),
      acceptor_(ex),
      pump_timer_(ex),
      connect_timer_(ex),
      store_(cfg_.store_capacity),
      uplink_(uplink_config_of(cfg_)),
      upload_bucket_(cfg_.upload_limit, static_cast<double>(uplink_.burst_bytes()), core::clock::now()),
      uplink_timer_(ex),
      budget_bucket_(0, 1, core::clock::now()),
      rng_(cfg_.seed) {
    acceptor_.open(cfg_.listen.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(cfg_.listen);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    if (cfg_.push_substreams > 0) {
        swarm::push_tree_config tc;
        tc.substreams = cfg_.push_substreams;
        // The source grants one substream per child, and each to push_fanout children: the trees have
        // different roots, and a fresh chunk leaves the source as often as without them.
        if (cfg_.is_source) {
            tc.max_per_child = 1;
            tc.max_per_substream = std::max<std::size_t>(cfg_.push_fanout, 1);
        } else {
            tc.max_per_substream = cfg_.push_children;
        }
        tree_ = std::make_unique<swarm::push_tree>(tc);
    }
    if (cfg_.is_source && cfg_.pick_seeds) seeds_ = std::make_unique<swarm::seed_picker>();
}

node::~node() = default;

tcp::endpoint node::local_endpoint() const { return acceptor_.local_endpoint(); }

std::uint16_t node::advertised_port() const {
    return cfg_.advertised_port != 0 ? cfg_.advertised_port : acceptor_.local_endpoint().port();
}

void node::stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    pump_timer_.cancel();
    connect_timer_.cancel();
    uplink_timer_.cancel();
    std::vector<std::shared_ptr<session>> all(pending_.begin(), pending_.end());
    for (const auto& [id, s] : sessions_) all.push_back(s);
    for (const auto& s : all) s->close("node stopping");
}

void node::wake() noexcept {
    woken_ = true;
    pump_timer_.cancel();
}

asio::awaitable<void> node::run() {
    auto self = shared_from_this();
    asio::co_spawn(acceptor_.get_executor(), accept_loop(self), net::log_errors("peer: accept loop"));
    asio::co_spawn(acceptor_.get_executor(), connect_loop(self), net::log_errors("peer: connect loop"));
    asio::co_spawn(acceptor_.get_executor(), uplink_loop(self), net::log_errors("peer: uplink sampler"));
    co_await pump(self);
}

// ---- connections ---------------------------------------------------------------------------------

asio::awaitable<void> node::accept_loop(std::shared_ptr<node> self) {
    while (!self->stopping_) {
        auto [ec, socket] = co_await self->acceptor_.async_accept(use_tuple);
        if (ec) {
            if (self->stopping_ || ec == asio::error::operation_aborted) break;
            spdlog::warn("peer: accept failed: {}", ec.message());
            continue;
        }
        if (self->sessions_.size() + self->pending_.size() >= self->cfg_.max_peers + 4) continue;  // full: close
        ++self->stats_.connections_accepted;
        self->start_session(std::move(socket), false, "");
    }
}

void node::start_session(tcp::socket socket, bool outgoing, std::string key) {
    auto s = std::make_shared<session>(shared_from_this(), std::move(socket), outgoing);
    pending_.insert(s);
    asio::co_spawn(acceptor_.get_executor(), session::run(s), net::log_errors("peer: session"));
    (void)key;
}

void node::add_candidate(const std::string& ip, std::uint16_t port) {
    if (port == 0) return;
    const auto key = endpoint_key(ip, port);
    if (candidates_.emplace(key, candidate{}).second) connect_timer_.cancel();
}

asio::awaitable<void> node::connect_loop(std::shared_ptr<node> self) {
    while (!self->stopping_) {
        const auto now = core::clock::now();
        std::size_t have = self->sessions_.size() + self->pending_.size();
        std::vector<std::string> picks;
        for (auto& [key, c] : self->candidates_) {
            if (have + picks.size() >= self->cfg_.target_peers) break;
            if (c.next_try > now || self->connecting_.count(key)) continue;
            const auto colon = key.rfind(':');
            const auto ip = key.substr(0, colon);
            const auto port = static_cast<std::uint16_t>(std::stoi(key.substr(colon + 1)));
            bool connected = false;
            for (const auto& [id, s] : self->sessions_) connected = connected || (s->remote_ip() == ip && s->remote_port() == port);
            if (connected || self->banned({}, ip, port)) continue;
            picks.push_back(key);
        }
        std::shuffle(picks.begin(), picks.end(), self->rng_);
        for (const auto& key : picks) {
            const auto colon = key.rfind(':');
            self->connecting_.insert(key);
            asio::co_spawn(self->acceptor_.get_executor(),
                           connect_one(self, key.substr(0, colon), static_cast<std::uint16_t>(std::stoi(key.substr(colon + 1)))),
                           net::log_errors("peer: connect"));
        }
        self->connect_timer_.expires_after(core::milliseconds(500));
        co_await self->connect_timer_.async_wait(use_tuple);
    }
}

asio::awaitable<void> node::connect_one(std::shared_ptr<node> self, std::string ip, std::uint16_t port) {
    const auto key = endpoint_key(ip, port);
    boost::system::error_code aec;
    const auto addr = asio::ip::make_address(ip, aec);
    bool ok = false;
    tcp::socket socket(self->acceptor_.get_executor());
    if (!aec) {
        asio::steady_timer timer(self->acceptor_.get_executor());
        timer.expires_after(self->cfg_.connect_timeout);
        auto r = co_await (socket.async_connect(tcp::endpoint(addr, port), use_tuple) || timer.async_wait(use_tuple));
        ok = r.index() == 0 && !std::get<0>(std::get<0>(r));
    }
    self->connecting_.erase(key);
    auto& c = self->candidates_[key];
    if (!ok || self->stopping_) {
        ++self->stats_.connect_failures;
        ++c.failures;
        c.next_try = core::clock::now() + std::min<core::duration>(core::seconds(30), core::seconds(1) * (1 << std::min(c.failures, 5)));
        co_return;
    }
    c.failures = 0;
    c.next_try = core::clock::now() + core::seconds(5);  // do not redial at once if it drops
    ++self->stats_.connections_made;
    self->start_session(std::move(socket), true, key);
}

bool node::banned(const core::peer_id& id, const std::string& ip, std::uint16_t port) const {
    const auto now = core::clock::now();
    if (const auto it = banned_ids_.find(id); it != banned_ids_.end() && it->second > now && !id.is_zero()) return true;
    const auto it = banned_endpoints_.find(endpoint_key(ip, port));
    return it != banned_endpoints_.end() && it->second > now;
}

bool node::admit(const std::shared_ptr<session>& s) {
    if (stopping_ || banned(s->remote_id(), s->remote_ip(), s->remote_port())) return false;
    if (const auto it = sessions_.find(s->remote_id()); it != sessions_.end()) {
        // Both sides dialled each other: keep the connection the smaller peer id initiated, as the
        // other side decides the same way.
        const bool we_are_smaller = cfg_.self < s->remote_id();
        if (s->outgoing() != we_are_smaller) return false;
        auto old = it->second;
        sessions_.erase(it);
        old->close("duplicate connection");
    } else if (sessions_.size() >= cfg_.max_peers) {
        return false;
    }
    pending_.erase(s);
    sessions_[s->remote_id()] = s;
    if (scheduler_) scheduler_->add_peer(s->remote_id());
    if (tree_) tree_->add_peer(s->remote_id(), s->remote_is_source());
    // Tell it about our other neighbours that accept connections (peer exchange).
    wire::peers pex;
    for (const auto& [id, other] : sessions_) {
        if (other == s || other->remote_port() == 0 || pex.entries.size() >= wire::max_pex_peers) continue;
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(other->remote_ip(), ec);
        if (ec) continue;
        wire::peer_entry e;
        e.id = id;
        e.port = other->remote_port();
        if (addr.is_v4()) {
            e.family = wire::peer_entry::ipv4;
            const auto b = addr.to_v4().to_bytes();
            std::copy(b.begin(), b.end(), e.address.begin());
        } else {
            e.family = wire::peer_entry::ipv6;
            const auto b = addr.to_v6().to_bytes();
            std::copy(b.begin(), b.end(), e.address.begin());
        }
        pex.entries.push_back(e);
    }
    if (!pex.entries.empty()) s->send(pex);
    spdlog::debug("peer: connected to {}:{} ({} neighbours)", s->remote_ip(), s->remote_port(), sessions_.size());
    wake();
    return true;
}

void node::on_closed(const std::shared_ptr<session>& s) {
    pending_.erase(s);
    if (const auto it = sessions_.find(s->remote_id()); it != sessions_.end() && it->second == s) {
        sessions_.erase(it);
        if (scheduler_) scheduler_->remove_peer(s->remote_id());
        if (tree_) tree_->remove_peer(s->remote_id());
        if (seeds_) seeds_->forget(s->remote_id());
        connect_timer_.cancel();  // look for a replacement
        wake();
    }
}

session* node::find(const core::peer_id& id) const {
    const auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

void node::ban(const std::shared_ptr<session>& s, const std::string& why) {
    const auto now = core::clock::now();
    const auto until = now + cfg_.ban_time;
    ++stats_.bans;
    // Bounded: an attacker with ever new identities must not grow these without limit.
    auto bound = [now](auto& bans) {
        if (bans.size() < max_bans) return;
        std::erase_if(bans, [now](const auto& b) { return b.second <= now; });
        while (bans.size() >= max_bans) {
            bans.erase(std::min_element(bans.begin(), bans.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; }));
        }
    };
    bound(banned_ids_);
    bound(banned_endpoints_);
    banned_ids_[s->remote_id()] = until;
    if (s->remote_port() != 0) banned_endpoints_[endpoint_key(s->remote_ip(), s->remote_port())] = until;
    spdlog::warn("peer: banned {}:{}: {}", s->remote_ip(), s->remote_port(), why);
    s->close("banned: " + why);
}

// ---- messages ------------------------------------------------------------------------------------

void node::on_message(const std::shared_ptr<session>& s, wire::message& m) {
    const auto now = core::clock::now();
    std::visit(
        [&](auto& msg) {
            using T = std::decay_t<decltype(msg)>;
            if constexpr (std::is_same_v<T, wire::bitmap>) {
                s->remote_map() = core::buffer_map(core::buffer_map::max_capacity, msg.base);
                msg.apply_to(s->remote_map());
                if (scheduler_) scheduler_->on_bitmap(s->remote_id(), s->remote_map());
                wake();
            } else if constexpr (std::is_same_v<T, wire::have>) {
                s->remote_map().advance_to_fit(msg.id);
                s->remote_map().set(msg.id);
                spdlog::trace("peer: have {} from {}:{}", msg.id.value(), s->remote_ip(), s->remote_port());
                if (scheduler_) scheduler_->on_have(s->remote_id(), msg.id);
                if (tree_) on_tree_have(*s, msg.id, now);
                if (seeds_) seeds_->on_have(s->remote_id(), msg.id, now);
                wake();
            } else if constexpr (std::is_same_v<T, wire::request>) {
                s->requested(msg.id);
            } else if constexpr (std::is_same_v<T, wire::cancel>) {
                s->cancelled(msg.id);
            } else if constexpr (std::is_same_v<T, wire::reject>) {
                spdlog::trace("peer: rejected {} by {}:{}", msg.id.value(), s->remote_ip(), s->remote_port());
                if (scheduler_) scheduler_->on_reject(s->remote_id(), msg.id, now);
                header_requests_.erase(msg.id);
                wake();
            } else if constexpr (std::is_same_v<T, wire::chunk>) {
                on_chunk(s, std::move(msg));
            } else if constexpr (std::is_same_v<T, wire::subscribe>) {
                // Another substream count than ours: nothing is granted (its ids would split differently).
                std::uint32_t granted = 0;
                if (tree_ && msg.substreams == tree_->substreams()) granted = tree_->on_subscribe(s->remote_id(), msg.mask, now);
                s->send(wire::grant{msg.substreams, granted});
            } else if constexpr (std::is_same_v<T, wire::grant>) {
                if (tree_ && msg.substreams == tree_->substreams()) {
                    tree_->on_grant(s->remote_id(), msg.mask, now);
                    wake();
                }
            } else if constexpr (std::is_same_v<T, wire::peers>) {
                for (const auto& e : msg.entries) {
                    if (e.id == cfg_.self) continue;
                    std::string ip;
                    if (e.family == wire::peer_entry::ipv4) {
                        asio::ip::address_v4::bytes_type b{};
                        std::copy_n(e.address.begin(), 4, b.begin());
                        ip = asio::ip::address_v4(b).to_string();
                    } else {
                        asio::ip::address_v6::bytes_type b{};
                        std::copy_n(e.address.begin(), 16, b.begin());
                        ip = asio::ip::address_v6(b).to_string();
                    }
                    add_candidate(ip, e.port);
                }
            }
            // keepalive: nothing to do; handshake cannot reach here (session_rules).
        },
        m);
}

void node::on_chunk(const std::shared_ptr<session>& s, wire::chunk&& c) {
    if (!wire::verify_chunk(c, cfg_.channel)) {
        ++stats_.bad_chunks;
        ban(s, "chunk " + std::to_string(c.id.value()) + " failed signature verification");
        return;
    }
    const auto now = core::clock::now();
    ++stats_.chunks_in;
    stats_.payload_bytes_in += c.payload.size();
    s->remote_map().advance_to_fit(c.id);
    s->remote_map().set(c.id);
    auto ptr = std::make_shared<const wire::chunk>(std::move(c));
    if (spdlog::should_log(spdlog::level::trace)) {
        const auto wall = wall_now();
        spdlog::trace("peer: chunk {} from {}:{} age {} ms", ptr->id.value(), s->remote_ip(), s->remote_port(),
                      ptr->timestamp < wall ? (wall - ptr->timestamp) / 1000 : 0);
    }
    const bool answered = scheduler_ && scheduler_->on_chunk(s->remote_id(), ptr->id, ptr->payload.size(), now);
    header_requests_.erase(ptr->id);
    if (tree_) (void)tree_->on_heard(s->remote_id(), ptr->id, core::duration::zero(), now);
    // Pushed on first (push() marks the target as knowing it), so that no HAVE invites a REQUEST for it:
    // to the children of its substream; a chunk the source pushed that no child takes goes to
    // relay_pushes neighbours instead.
    if (!ptr->is_header() && !store_.has(ptr->id) && !(ptr->id < store_.map().base())) {
        const auto copies = push_to_children(ptr);
        if (copies == 0 && !answered && s->remote_is_source() && cfg_.relay_pushes > 0) relay_push(ptr, s.get());
    }
    if (!accept_chunk(ptr, s.get())) ++stats_.duplicate_chunks;
    wake();
}

bool node::accept_chunk(const wire::chunk_ptr& c, const session* from) {
    if (!store_.insert(c)) return false;
    // Chunk spacing, for deadlines and skipping: the source's timestamps over a span of chunks.
    if (const auto newest = store_.newest(); newest && *newest == c->id) {
        if (const auto iv = store_.interval(interval_min_span, interval_max_span)) interval_s_ = std::clamp(*iv, 0.01, 10.0);
    }
    // The source keeps a fresh chunk to itself beyond its pushes: announcing it would only invite
    // requests it REJECTs (source_fresh_copies), a wasted round trip for every neighbour. It is
    // announced once it is old enough to be served as a repair (announce_aged()).
    if (cfg_.is_source && from == nullptr && !c->is_header() && cfg_.source_fresh > core::duration::zero()) {
        unannounced_.push_back({core::clock::now(), c->id});
        while (unannounced_.size() > 4096) unannounced_.pop_front();
    } else {
        announce(c->id, from);
    }
    if (scheduler_) scheduler_->set_have(c->id);
    return true;
}

void node::relay_push(const wire::chunk_ptr& c, const session* from) {
    // The source pushed it: pass it straight on to relay_pushes neighbours (picked at random) that do
    // not hold it. Each saves a HAVE -> REQUEST round trip on the chunk's first hops, while the source
    // keeps it out of its HAVEs.
    std::vector<session*> targets;
    for (const auto& [id, s] : sessions_) {
        if (s.get() == from || s->remote_is_source() || s->knows(c->id)) continue;
        targets.push_back(s.get());
    }
    std::shuffle(targets.begin(), targets.end(), rng_);
    const auto n = std::min(cfg_.relay_pushes, targets.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (targets[i]->push(c) && tree_) tree_->on_told(targets[i]->remote_id(), c->id);
    }
}

std::size_t node::push_to_children(const wire::chunk_ptr& c) {
    if (!tree_ || c->is_header()) return 0;
    const auto sub = tree_->substream_of(c->id);
    std::size_t copies = 0;
    for (const auto& [id, s] : sessions_) {
        if (!tree_->is_child(id, sub) || s->knows(c->id)) continue;
        if (s->push(c)) {
            tree_->on_told(id, c->id);
            ++copies;
        }
    }
    return copies;
}

void node::on_tree_have(session& s, core::chunk_id id, core::time_point now) {
    const bool first = tree_->on_heard(s.remote_id(), id, s.rtt() + fetch_transfer, now);
    s.drop_push(id);  // it has it already
    // The first word of a chunk whose substream a parent pushes to us: the push is on its way (or the
    // parent is late, which the tree sees), so it is not requested at once from this neighbour.
    if (!first || !scheduler_ || store_.has(id) || !tree_->pushed_to_us(id)) return;
    if (tree_->parent(tree_->substream_of(id)) == s.remote_id()) return;
    auto until = now + cfg_.push_patience;
    if (const auto& d = scheduler_->deadlines()) until = std::min(until, d->deadline(id) - defer_margin);
    if (until > now) scheduler_->defer(id, until);
}

double node::stream_rate() const {
    // Mean frame size over the newest chunks, one per chunk interval.
    const auto newest = store_.newest();
    if (!newest || interval_s_ <= 0) return 0;
    double bytes = 0;
    std::size_t n = 0;
    for (std::size_t back = 0; back < stream_rate_chunks && back <= newest->value(); ++back) {
        const auto c = store_.get(*newest - back);
        if (!c || c->is_header()) continue;
        bytes += static_cast<double>(wire::frame_size(*c));
        ++n;
    }
    return n == 0 ? 0 : bytes / static_cast<double>(n) / interval_s_;
}

void node::update_tree(core::time_point now) {
    if (!tree_) return;
    if (cfg_.is_source) {
        tree_->set_capacity(static_cast<std::size_t>(tree_->substreams()) * cfg_.push_fanout);
    } else {
        // Subscriptions the measured uplink can push at the stream's rate, leaving push_share for pulls.
        const double per_substream = stream_rate() / tree_->substreams();
        const double slots = per_substream > 0 ? cfg_.push_share * uplink_.drain_rate(now) / per_substream : 0;
        tree_->set_capacity(static_cast<std::size_t>(std::clamp(slots, 0.0, 1024.0)));
    }
    tree_actions_.clear();
    tree_->poll(now, tree_actions_);
    for (const auto& a : tree_actions_) {
        auto* s = find(a.peer);
        if (!s) continue;
        const auto k = static_cast<std::uint8_t>(tree_->substreams());
        if (a.kind == swarm::tree_action_kind::subscribe) s->send(wire::subscribe{k, a.mask});
        else s->send(wire::grant{k, a.mask});
    }
}

void node::announce(core::chunk_id id, const session* from) {
    std::optional<bool> near_edge;  // computed for the source's session only
    for (const auto& [sid, s] : sessions_) {
        if (s.get() == from || s->knows(id)) continue;
        if (s->remote_is_source() && !cfg_.is_source) {
            if (!near_edge) {
                auto edge = live_edge().value_or(id);
                if (const auto newest = store_.newest(); newest && *newest > edge) edge = *newest;
                const auto window = static_cast<std::uint64_t>(std::ceil(source_have_window_s / std::max(interval_s_, 0.01)));
                near_edge = id.value() + window > edge.value();
            }
            if (!*near_edge) continue;
        }
        s->send(wire::have{id});
        if (tree_) tree_->on_told(sid, id);
    }
}

void node::announce_aged(core::time_point now) {
    if (unannounced_.empty() || now - unannounced_.front().first <= cfg_.source_fresh + aged_batch) return;
    while (!unannounced_.empty() && now - unannounced_.front().first > cfg_.source_fresh) {
        if (store_.has(unannounced_.front().second)) announce(unannounced_.front().second, nullptr);
        unannounced_.pop_front();
    }
}

bool node::may_serve(core::chunk_id id) {
    if (!cfg_.is_source) return true;
    if (const auto c = store_.get(id); c && c->is_header()) return true;  // small, and every player needs it
    const auto it = fresh_copies_.find(id);
    if (it == fresh_copies_.end()) return true;  // old enough: repair for anyone
    if (core::clock::now() - it->second.first > cfg_.source_fresh) {
        fresh_copies_.erase(fresh_copies_.begin(), std::next(it));  // ids only get older
        return true;
    }
    if (it->second.second >= cfg_.source_fresh_copies) return false;
    ++it->second.second;
    return true;
}

bool node::within_budget(core::chunk_id id) {
    if (!cfg_.is_source || budget_bucket_.unlimited()) return true;
    const auto c = store_.get(id);
    if (!c || c->is_header()) return true;  // small, and every player needs it
    return budget_bucket_.try_consume(static_cast<double>(wire::frame_size(*c)), core::clock::now());
}

bool node::upload_saturated() {
    const auto now = core::clock::now();
    const double debt = upload_bucket_.unlimited() ? 0.0 : std::max(0.0, -upload_bucket_.available(now));
    const double waiting = static_cast<double>(upload_queued_bytes_ + kernel_unsent_total()) + debt;
    return uplink_.should_reject(waiting, now);
}

bool node::make_room_for(core::chunk_id id) {
    // Only if dropping every staler queued chunk would get the node under the bound: otherwise the
    // request is refused and nothing is displaced.
    std::size_t staler = 0;
    for (const auto& [sid, s] : sessions_) staler += s->queued_bytes_before(id);
    const auto now = core::clock::now();
    const double debt = upload_bucket_.unlimited() ? 0.0 : std::max(0.0, -upload_bucket_.available(now));
    const double waiting = static_cast<double>(upload_queued_bytes_ + kernel_unsent_total()) + debt;
    if (uplink_.should_reject(waiting - static_cast<double>(staler), now)) return false;
    for (;;) {
        session* victim = nullptr;
        core::chunk_id stalest{};
        for (const auto& [sid, s] : sessions_) {
            const auto st = s->stalest_upload();
            if (st && *st < id && (!victim || *st < stalest)) {
                victim = s.get();
                stalest = *st;
            }
        }
        if (!victim) return !upload_saturated();
        victim->displace(stalest);
        if (!upload_saturated()) return true;
    }
}

core::buffer_map node::advertised_map() const {
    auto m = store_.map();
    for (const auto& [at, id] : unannounced_) m.reset(id);  // the source's fresh chunks stay unannounced
    return m;
}

session* node::next_slot_holder() const noexcept {
    // Pushes first; then the freshest chunk: it has the fewest holders, and every neighbour that gets
    // it can pass it on, while an old one is a repair that others can serve too.
    session* best = nullptr;
    std::pair<bool, core::chunk_id> best_key{};
    for (auto* w : slot_waiters_) {
        const auto head = w->next_upload();
        if (!head) continue;
        const std::pair<bool, core::chunk_id> key{w->has_push(), *head};
        if (!best || best_key < key) {
            best = w;
            best_key = key;
        }
    }
    return best;
}

bool node::take_upload_slot(session* s) {
    const auto it = std::find(slot_waiters_.begin(), slot_waiters_.end(), s);
    if (it == slot_waiters_.end()) slot_waiters_.push_back(s);
    if (upload_slots_busy_ >= std::max<std::size_t>(cfg_.upload_slots, 1) || next_slot_holder() != s) return false;
    std::erase(slot_waiters_, s);
    ++upload_slots_busy_;
    if (upload_slots_busy_ < std::max<std::size_t>(cfg_.upload_slots, 1)) {
        if (auto* w = next_slot_holder()) w->wake_writer();
    }
    return true;
}

void node::release_upload_slot() noexcept {
    if (upload_slots_busy_ > 0) --upload_slots_busy_;
    if (auto* w = next_slot_holder()) w->wake_writer();
}

void node::forget_slot_waiter(session* s) noexcept {
    const auto it = std::find(slot_waiters_.begin(), slot_waiters_.end(), s);
    if (it == slot_waiters_.end()) return;
    slot_waiters_.erase(it);
    if (upload_slots_busy_ < std::max<std::size_t>(cfg_.upload_slots, 1)) {
        if (auto* w = next_slot_holder()) w->wake_writer();
    }
}

std::size_t node::kernel_in_flight_total() const {
    std::size_t n = 0;
    for (const auto& [id, s] : sessions_) {
        const auto q = s->kernel_outstanding();
        const auto u = s->kernel_unsent();
        n += q > u ? q - u : 0;
    }
    return n;
}

std::size_t node::kernel_unsent_total() const {
    std::size_t n = 0;
    for (const auto& [id, s] : sessions_) n += s->kernel_unsent();
    return n;
}

void node::sample_uplink(core::time_point now) {
    for (const auto& [id, s] : sessions_) delivered_total_ += s->take_delivered();
    const bool backlogged = upload_queued_bytes_ > 0 || kernel_unsent_total() > 0;
    uplink_.estimator().sample(delivered_total_, backlogged, now);
    if (cfg_.is_source && cfg_.source_budget > 0) {
        // The budget follows the stream's measured rate; a second of it may be spent at once, at the
        // link's full speed (pushes must not be slowed down by it).
        const double budget = cfg_.source_budget * published_meter_.rate(now);
        if (budget > 0 && budget_bucket_.unlimited()) {
            budget_bucket_ = core::token_bucket(budget, std::max(budget, budget_min_burst), now);  // full
        } else if (budget > 0 && std::abs(budget - budget_bucket_.rate()) > 0.02 * budget) {
            budget_bucket_.set_rate(budget, std::max(budget, budget_min_burst), now);
        }
    }
    const double rate = uplink_.pacing_rate(now);
    if (rate != upload_bucket_.rate()) upload_bucket_.set_rate(rate, static_cast<double>(uplink_.burst_bytes()), now);
}

asio::awaitable<void> node::uplink_loop(std::shared_ptr<node> self) {
    while (!self->stopping_) {
        self->sample_uplink(core::clock::now());
        self->uplink_timer_.expires_after(uplink_sample_period);
        co_await self->uplink_timer_.async_wait(use_tuple);
    }
}

void node::publish(wire::chunk_ptr c) {
    ++stats_.chunks_published;
    stats_.bytes_published += c->payload.size();
    published_meter_.add(wire::frame_size(*c), core::clock::now());
    // Push it to the children of its substream, or, if none subscribed to it, to push_fanout neighbours
    // (those that spread their pushes fastest: seed_picker, or in turn), before announcing it to the rest.
    auto pushes = push_to_children(c);
    if (pushes == 0) {
        std::vector<session*> targets;
        for (const auto& [id, s] : sessions_) {
            if (!s->remote_is_source()) targets.push_back(s.get());
        }
        if (seeds_) {
            const auto now = core::clock::now();
            std::vector<core::peer_id> candidates;
            for (const auto* s : targets) candidates.push_back(s->remote_id());
            for (std::size_t i = 0; i < cfg_.push_fanout && !candidates.empty(); ++i) {
                const auto target = seeds_->pick(candidates, now);
                if (!target) break;
                if (sessions_.at(*target)->push(c)) {
                    seeds_->on_pushed(*target, c->id, now);
                    ++pushes;
                }
                std::erase(candidates, *target);
            }
        } else {
            std::sort(targets.begin(), targets.end(), [](const session* a, const session* b) { return a->remote_id() < b->remote_id(); });
            const auto n = std::min(cfg_.push_fanout, targets.size());
            for (std::size_t i = 0; i < n; ++i) pushes += targets[(push_cursor_ + i) % targets.size()]->push(c) ? 1 : 0;
            if (!targets.empty()) push_cursor_ = (push_cursor_ + cfg_.push_fanout) % targets.size();
        }
    }
    if (!budget_bucket_.unlimited() && pushes > 0) {  // pushes always go; repairs get what is left
        (void)budget_bucket_.reserve(static_cast<double>(pushes * wire::frame_size(*c)), core::clock::now());
    }
    fresh_copies_[c->id] = {core::clock::now(), pushes};
    while (fresh_copies_.size() > 4096) fresh_copies_.erase(fresh_copies_.begin());
    accept_chunk(c, nullptr);
}

// ---- joining, scheduling and playing ---------------------------------------------------------------

void node::rebuild_scheduler(core::chunk_id playhead) {
    auto sc = cfg_.scheduler;
    sc.seed = cfg_.seed;
    scheduler_ = std::make_unique<swarm::scheduler>(sc, playhead);
    for (const auto& [id, s] : sessions_) scheduler_->on_bitmap(id, s->remote_map());
    store_.map().for_each_set([&](core::chunk_id id) { scheduler_->set_have(id); });
}

std::optional<core::chunk_id> node::live_edge() const {
    std::optional<core::chunk_id> edge;
    for (const auto& [id, s] : sessions_) {
        if (const auto last = s->remote_map().last_set(); last && (!edge || *last > *edge)) edge = *last;
    }
    return edge;
}

void node::join(core::time_point now) {
    if (join_ == join_state::waiting) {
        const auto edge = live_edge();
        if (!edge) return;
        // Fetch the newest chunks first, interval_min_span of them below the edge: the source's
        // timestamps over that span give the chunk interval (two neighbours could be cut 10 ms apart).
        probe_edge_ = *edge;
        probe_started_ = now;
        rebuild_scheduler(probe_edge_.value() >= interval_min_span ? probe_edge_ - interval_min_span : core::chunk_id{0});
        join_ = join_state::probing;
        return;
    }
    if (join_ != join_state::probing) return;
    // The newest held chunk anchors the start and the lag; the interval needs a span of chunks (any
    // that arrived: waiting for exactly E-4 and E could take a penalty period if one was rejected).
    const auto newest_id = store_.newest();
    const auto newest = newest_id ? store_.get(*newest_id) : nullptr;
    const auto span_interval = store_.interval(interval_min_span, interval_max_span);
    if (!newest && now - probe_started_ > probe_timeout) {
        join_ = join_state::waiting;  // nothing came: look at the live edge again
        return;
    }
    if (!newest || (!span_interval && now - probe_started_ <= probe_timeout)) return;
    const auto anchor = newest;
    if (span_interval) {
        interval_s_ = std::clamp(*span_interval, 0.01, 10.0);
    } else if (const auto short_span = store_.interval(2, interval_max_span)) {
        interval_s_ = std::clamp(*short_span, 0.01, 10.0);  // the probe timed out: the best there is
    }
    // Every chunk leaves `buffer` after its source timestamp (the same lag for all), or, when the swarm
    // delivers fresh chunks later than that, their age plus a margin. That age is the newest chunk the
    // neighbours hold now, not the anchor's: fetching the anchor may have taken long (holders serve
    // fresher chunks first), and a lag set from it would stay that much too long for the whole session.
    const auto wall = wall_now();
    const auto age = std::chrono::duration_cast<core::duration>(
        anchor->timestamp < wall ? core::microseconds(wall - anchor->timestamp) : core::microseconds(0));
    const auto edge_now = live_edge();
    const auto newer = edge_now && *edge_now > anchor->id ? distance(anchor->id, *edge_now) : std::int64_t{0};
    const auto edge_age = std::max(core::duration::zero(), age - core::from_seconds(static_cast<double>(newer) * interval_s_));
    const auto lag = std::max(cfg_.buffer, edge_age + join_margin);
    // Start at the chunk due now (held ones play at once; older ones would be late).
    auto start = anchor->id;
    if (lag >= age) {
        const auto back = static_cast<std::uint64_t>(std::floor(core::to_seconds(lag - age) / interval_s_));
        start = anchor->id.value() >= back ? anchor->id - back : core::chunk_id{0};
    } else {  // the anchor is already late at this lag: the first chunk not yet due
        start = anchor->id + static_cast<std::uint64_t>(std::ceil(core::to_seconds(age - lag) / interval_s_));
    }
    // Not before what the neighbours still hold.
    std::optional<core::chunk_id> lowest;
    for (const auto& [id, s] : sessions_) {
        if (const auto first = s->remote_map().next_set(core::chunk_id{0}); first && (!lowest || *first < *lowest)) lowest = first;
    }
    if (lowest && *lowest > start) start = *lowest;
    playout_.start(start, lag, wall, now);
    rebuild_scheduler(start);
    join_ = join_state::playing;
    spdlog::info("peer: joining at chunk {} (live edge {}, {:.2f} s per chunk, lag {:.2f} s)", start.value(),
                 anchor->id.value(), interval_s_, core::to_seconds(playout_.lag()));
}

void node::fetch_missing_headers(core::time_point now) {
    auto c = store_.get(playout_.next());
    if (!c) {
        const auto id = store_.map().next_set(playout_.next());
        c = id ? store_.get(*id) : nullptr;
    }
    if (!c || !c->has_header_ref() || store_.has(c->header_ref) || sessions_.empty()) return;
    const auto it = header_requests_.find(c->header_ref);
    if (it != header_requests_.end() && now - it->second < header_retry) return;
    // Ask the source if we know it, else any neighbour (they all keep the headers pinned).
    session* target = nullptr;
    for (const auto& [id, s] : sessions_) {
        if (s->remote_is_source()) target = s.get();
    }
    if (!target) {
        auto it2 = sessions_.begin();
        std::advance(it2, static_cast<std::ptrdiff_t>(rng_() % sessions_.size()));
        target = it2->second.get();
    }
    target->send(wire::request{c->header_ref});
    header_requests_[c->header_ref] = now;
}

void node::play(core::time_point now) {
    std::vector<playout_event> events;
    playout_.poll(now, store_, events);
    bool gap = false;
    for (const auto& e : events) {
        switch (e.what) {
        case playout_event::kind::skip: gap = true; break;
        case playout_event::kind::play:
            if (gap && playback_.gap) playback_.gap();
            gap = false;
            if (playback_.play) playback_.play(e.chunk);
            break;
        case playout_event::kind::end:
            if (playback_.end) playback_.end(e.chunk);
            break;
        }
    }
    if (gap && playback_.gap) playback_.gap();
}

asio::awaitable<void> node::pump(std::shared_ptr<node> self) {
    std::vector<swarm::action> actions;
    while (!self->stopping_) {
        self->woken_ = false;
        const auto now = core::clock::now();
        if (self->cfg_.is_source) self->announce_aged(now);
        self->update_tree(now);
        if (!self->cfg_.is_source) {
            if (self->join_ != join_state::playing) self->join(now);
            if (self->join_ == join_state::playing) {
                self->playout_.set_interval(core::from_seconds(self->interval_s_));
                for (const auto& [id, s] : self->sessions_) {
                    if (const auto last = s->remote_map().last_set()) self->playout_.set_live_edge(*last);
                }
                self->play(now);
                self->fetch_missing_headers(now);
                self->scheduler_->set_window(self->playout_.next());
                if (const auto newest = self->store_.newest()) {
                    if (const auto c = self->store_.get(*newest)) {
                        self->scheduler_->set_deadlines(
                            {c->id, self->playout_.due(*c), core::from_seconds(self->interval_s_)});
                    }
                }
            }
            if (self->scheduler_) {
                actions.clear();
                self->scheduler_->poll(now, actions);
                for (const auto& a : actions) {
                    auto* s = self->find(a.peer);
                    if (!s) continue;
                    if (a.kind == swarm::action_kind::request) {
                        spdlog::trace("peer: requesting {} from {}:{}", a.id.value(), s->remote_ip(), s->remote_port());
                        s->send(wire::request{a.id});
                    } else {
                        s->send(wire::cancel{a.id});
                    }
                }
            }
        }
        if (self->woken_) continue;
        auto next = now + pump_period;
        if (self->scheduler_) {
            if (const auto t = self->scheduler_->next_timeout()) next = std::min(next, *t);
        }
        if (const auto t = self->playout_.next_deadline(self->store_)) next = std::min(next, *t);
        if (!self->unannounced_.empty()) next = std::min(next, self->unannounced_.front().first + self->cfg_.source_fresh);
        self->pump_timer_.expires_at(std::max(next, now + core::milliseconds(1)));
        co_await self->pump_timer_.async_wait(use_tuple);
    }
}

// ---- reporting ---------------------------------------------------------------------------------------

node_stats node::stats() const {
    auto s = stats_;
    s.neighbours = sessions_.size();
    s.playout = playout_.stats();
    if (scheduler_) s.scheduler = scheduler_->stats();
    const auto now = core::clock::now();
    s.upload_rate = up_meter_.rate(now);
    s.uplink_estimate = uplink_.estimator().capacity(now).value_or(0.0);
    s.uplink_pacing = upload_bucket_.rate();
    s.uplink_busy_intervals = uplink_.estimator().stats().busy_intervals;
    s.kernel_unsent = kernel_unsent_total();
    s.upload_queued = upload_queued_bytes_;
    s.download_rate = down_meter_.rate(core::clock::now());
    if (tree_) {
        s.tree = tree_->stats();
        s.tree_capacity = tree_->capacity();
        s.tree_children = tree_->granted_total();
        for (unsigned i = 0; i < tree_->substreams(); ++i) s.tree_parents += tree_->parent(i) ? 1 : 0;
    }
    if (seeds_) s.seeds = seeds_->stats();
    return s;
}

std::vector<neighbour_info> node::neighbours() const {
    std::vector<neighbour_info> out;
    for (const auto& [id, s] : sessions_) {
        out.push_back({id, s->remote_ip(), s->remote_port(), s->outgoing(), s->remote_is_source(),
                       scheduler_ ? scheduler_->in_flight(id) : 0});
    }
    return out;
}

}  // namespace pixtream::peer
