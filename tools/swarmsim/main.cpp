// swarmsim: runs a whole swarm on loopback in one process (a tracker, a source and N peers on one
// io_context, real TCP between them) and reports the metrics of DESIGN.md. With --processes it runs
// the real programs instead, one process each (process_swarm.hpp).
//
// In this process the player side is each node's playback callback: continuity, startup and lag come
// from what it delivered and when (the nodes' own counters are diagnostics), and `measured` holds
// what the nodes really uploaded and the players really got over the steady part of the run.
#include "pixtream/net/net.hpp"
#include "pixtream/peer/node.hpp"
#include "pixtream/tracker/client.hpp"
#include "pixtream/tracker/server.hpp"
#include "pixtream/wire/signing.hpp"
#include "options.hpp"
#include "process_swarm.hpp"
#include "report.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <random>

namespace asio = boost::asio;
namespace po = boost::program_options;
using asio::ip::tcp;
using namespace pixtream;
using namespace pixtream::swarmsim;

namespace {

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::uint64_t hash_bytes(const std::vector<std::byte>& b) {
    std::uint64_t h = 1469598103934665603ULL;
    for (auto x : b) h = (h ^ std::to_integer<std::uint64_t>(x)) * 1099511628211ULL;
    return h;
}

// What the source produced: chunk id -> payload hash and source timestamp.
struct produced_chunk {
    std::uint64_t hash = 0;
    core::wall_micros timestamp = 0;
};

// One chunk handed to the player (the playback callback), and when.
struct delivery {
    std::uint64_t id = 0;
    core::wall_micros timestamp = 0;  // the chunk's source timestamp
    core::wall_micros at = 0;         // wall clock at the callback
};

// Player-side continuity: of the chunks produced from the first one played on, those that fell due
// by `until` (due: the first play's time + the chunk's timestamp offset from the first one's, plus
// the playout's late tolerance), how many the player got by then.
struct player_continuity {
    std::uint64_t due = 0;
    std::uint64_t on_time = 0;
    double value() const noexcept { return due == 0 ? 1.0 : static_cast<double>(on_time) / static_cast<double>(due); }
};

// One simulated viewer over its life in the run.
struct sim_peer {
    int index = 0;
    double cap_bps = 0;
    double start_s = 0;
    double leave_s = -1;  // churn: when it leaves (< 0: stays to the end)
    std::shared_ptr<peer::node> node;
    std::shared_ptr<tracker::client> announcer;
    bool running = false;
    bool left = false;
    core::time_point started{};
    double online_s = 0;
    std::optional<double> startup_s;
    std::vector<double> lags;
    std::vector<delivery> delivered;  // in order, ids increasing
    std::uint64_t played_bytes = 0;
    std::uint64_t mismatches = 0;  // played chunks whose bytes differ from the source's, or out of order
    core::wall_micros stopped_wall = 0;
    double stopped_s = 0;
    peer::node_stats final_stats;
    // The measurement window (see simulation::open_window): counters when this peer entered it.
    std::optional<double> window_from_s;
    std::uint64_t window_wire_out = 0;
    std::uint64_t window_played_bytes = 0;
};

class simulation {
public:
    simulation(asio::io_context& io, options opt) : io_(io), opt_(std::move(opt)), rng_(opt_.seed) {}

    void run();
    boost::json::object report() const;
    const std::vector<series_point>& series() const { return series_; }

private:
    static asio::awaitable<void> produce(simulation* self);
    static asio::awaitable<void> drive(simulation* self);
    void start_peer(sim_peer& p);
    void stop_peer(sim_peer& p);
    double elapsed() const { return core::to_seconds(core::clock::now() - t0_); }
    void sample();
    void open_window(double t);
    player_continuity continuity_of(const sim_peer& p, core::wall_micros until) const;

    asio::io_context& io_;
    options opt_;
    std::mt19937_64 rng_;
    core::time_point t0_{};
    wire::keypair key_ = wire::generate_keypair();
    std::shared_ptr<tracker::server> tracker_;
    std::string tracker_url_;
    std::shared_ptr<peer::node> source_;
    std::shared_ptr<tracker::client> source_announcer_;
    std::vector<std::unique_ptr<sim_peer>> peers_;
    std::map<std::uint64_t, produced_chunk> produced_;  // by chunk id
    std::uint64_t produced_bytes_ = 0;
    std::size_t chunk_bytes_ = 0;
    bool done_ = false;
    std::vector<series_point> series_;
    std::deque<std::pair<double, std::uint64_t>> out_history_;  // (t, bytes all peers sent)
    // The measurement window: from when every peer has joined and filled its buffer to the end.
    double window_at_s_ = 0;
    std::optional<double> window_from_s_;
    std::uint64_t source_window_wire_out_ = 0;
    double end_s_ = 0;
};

void simulation::start_peer(sim_peer& p) {
    peer::node_config c;
    c.channel = key_.public_key;
    c.self = core::peer_id::random(rng_);
    c.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    c.max_peers = opt_.max_peers;
    c.target_peers = opt_.target_peers;
    c.upload_limit = p.cap_bps / 8;
    c.buffer = core::from_seconds(opt_.buffer);
    c.max_upload_backlog = core::from_seconds(opt_.upload_backlog);
    c.store_capacity = 128;
    c.seed = rng_();
    p.node = std::make_shared<peer::node>(io_.get_executor(), c);
    p.node->on_playback({[this, &p](const wire::chunk_ptr& ch) {
                             const auto now = wall_now();
                             if (!p.startup_s) p.startup_s = core::to_seconds(core::clock::now() - p.started);
                             p.lags.push_back(static_cast<double>(static_cast<std::int64_t>(now - ch->timestamp)) / 1e6);
                             const auto it = produced_.find(ch->id.value());
                             if (it == produced_.end() || it->second.hash != hash_bytes(ch->payload)) ++p.mismatches;
                             if (!p.delivered.empty() && ch->id.value() <= p.delivered.back().id) {
                                 ++p.mismatches;  // repeated or out of order: not the source's stream
                                 return;
                             }
                             p.delivered.push_back({ch->id.value(), ch->timestamp, now});
                             p.played_bytes += ch->payload.size();
                         },
                         nullptr, nullptr});
    tracker::client_config t;
    std::string err;
    t.urls = {*tracker::parse_tracker_url(tracker_url_, err)};
    t.params.channel = key_.public_key;
    t.params.peer = c.self;
    t.params.port = p.node->advertised_port();
    t.params.numwant = 20;
    t.seed = rng_();
    auto* node = p.node.get();
    p.announcer = std::make_shared<tracker::client>(io_.get_executor(), t, [node](const auto& list) {
        for (const auto& e : list) node->add_candidate(e.ip, e.port);
    });
    p.started = core::clock::now();
    p.running = true;
    if (window_from_s_) p.window_from_s = elapsed();  // its counters start at 0
    asio::co_spawn(io_, p.node->run(), net::log_errors("swarmsim: peer"));
    asio::co_spawn(io_, p.announcer->run(), net::log_errors("swarmsim: announcer"));
}

void simulation::stop_peer(sim_peer& p) {
    if (!p.running) return;
    p.final_stats = p.node->stats();
    p.online_s = core::to_seconds(core::clock::now() - p.started);
    p.stopped_wall = wall_now();
    p.stopped_s = elapsed();
    p.announcer->stop();
    p.node->stop();
    p.running = false;
}

// The source: a chunk of rate * chunk_seconds pseudo-random bytes every chunk_seconds.
asio::awaitable<void> simulation::produce(simulation* self) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::mt19937_64 gen(self->opt_.seed * 7919);
    auto next = core::clock::now();
    std::uint64_t id = 1000;
    while (!self->done_) {
        wire::chunk c;
        c.id = core::chunk_id{id++};
        c.timestamp = wall_now();
        c.flags = wire::chunk::flag_random_access;
        c.payload.resize(self->chunk_bytes_);
        for (std::size_t i = 0; i < c.payload.size(); i += 8) {
            const auto v = gen();
            for (std::size_t k = 0; k < 8 && i + k < c.payload.size(); ++k) c.payload[i + k] = static_cast<std::byte>(v >> (8 * k));
        }
        wire::sign_chunk(c, self->key_.secret);
        self->produced_[c.id.value()] = {hash_bytes(c.payload), c.timestamp};
        self->produced_bytes_ += c.payload.size();
        self->source_->publish(std::make_shared<const wire::chunk>(std::move(c)));
        next += core::from_seconds(self->opt_.chunk_seconds);
        timer.expires_at(next);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

player_continuity simulation::continuity_of(const sim_peer& p, core::wall_micros until) const {
    player_continuity c;
    if (p.delivered.empty()) return c;
    const auto tolerance = std::chrono::duration_cast<std::chrono::microseconds>(peer::playout::default_late_tolerance).count();
    const auto& first = p.delivered.front();
    auto d = p.delivered.begin();
    for (auto it = produced_.lower_bound(first.id); it != produced_.end(); ++it) {
        const auto deadline = static_cast<std::int64_t>(first.at) +
                              (static_cast<std::int64_t>(it->second.timestamp) - static_cast<std::int64_t>(first.timestamp)) +
                              tolerance;
        if (deadline > static_cast<std::int64_t>(until)) break;  // not due yet (timestamps grow with ids)
        ++c.due;
        while (d != p.delivered.end() && d->id < it->first) ++d;
        if (d != p.delivered.end() && d->id == it->first && static_cast<std::int64_t>(d->at) <= deadline) ++c.on_time;
    }
    return c;
}

// Every peer has joined and had its buffer's time to start: counters from here on show the swarm
// in its steady state.
void simulation::open_window(double t) {
    window_from_s_ = t;
    source_window_wire_out_ = source_->stats().wire_bytes_out;
    for (auto& p : peers_) {
        if (!p->running) continue;
        p->window_from_s = t;
        p->window_wire_out = p->node->stats().wire_bytes_out;
        p->window_played_bytes = p->played_bytes;
    }
}

void simulation::sample() {
    std::vector<double> lags;
    double cont = 0;
    int playing = 0;
    std::uint64_t out = 0;
    const auto now = wall_now();
    for (const auto& p : peers_) {
        if (!p->running) continue;
        const auto s = p->node->stats();
        out += s.wire_bytes_out;
        if (p->delivered.empty()) continue;
        ++playing;
        cont += continuity_of(*p, now).value();
        if (!p->lags.empty()) lags.push_back(p->lags.back());
    }
    const double t = elapsed();
    if (!window_from_s_ && t >= window_at_s_) open_window(t);
    const int running = static_cast<int>(std::count_if(peers_.begin(), peers_.end(), [](const auto& p) { return p->running; }));
    // Upload over the last second (samples come every 250 ms, chunks every chunk_seconds).
    out_history_.emplace_back(t, out);
    while (out_history_.size() > 1 && t - out_history_.front().first > 1.0) out_history_.pop_front();
    const double dt = t - out_history_.front().first;
    const double per_peer = running > 0 && dt > 0 && out >= out_history_.front().second
                                ? static_cast<double>(out - out_history_.front().second) * 8 / dt / running
                                : 0;
    series_.push_back({t, quantile(lags, 0.5), playing ? cont / playing : 1.0, per_peer, playing});
    const auto src = source_->stats();
    print_progress(opt_, series_.back(), running,
                   produced_bytes_ ? static_cast<double>(src.wire_bytes_out) / static_cast<double>(produced_bytes_) : 0.0,
                   series_.size() % 20 == 1);
}

asio::awaitable<void> simulation::drive(simulation* self) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    // Events in time order: joins and leaves.
    while (self->elapsed() < self->opt_.duration) {
        const double t = self->elapsed();
        for (std::size_t i = 0; i < self->peers_.size(); ++i) {
            auto& p = *self->peers_[i];
            if (!p.running && !p.left && p.start_s <= t) self->start_peer(p);
            if (p.running && p.leave_s >= 0 && p.leave_s <= t) {
                self->stop_peer(p);
                p.left = true;
                // A newcomer takes its place.
                auto fresh = std::make_unique<sim_peer>();
                fresh->index = static_cast<int>(self->peers_.size());
                fresh->cap_bps = p.cap_bps;
                fresh->start_s = t;
                self->peers_.push_back(std::move(fresh));
            }
        }
        self->sample();
        timer.expires_after(core::milliseconds(250));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    end_progress(self->opt_);
    self->end_s_ = self->elapsed();
    self->done_ = true;
    for (auto& p : self->peers_) self->stop_peer(*p);
    self->source_announcer_->stop();
    self->source_->stop();
    self->tracker_->stop();
}

void simulation::run() {
    t0_ = core::clock::now();
    chunk_bytes_ = static_cast<std::size_t>(opt_.rate_bps / 8 * opt_.chunk_seconds);
    window_at_s_ = std::min(opt_.join_window + opt_.buffer + 1, opt_.duration / 2);
    tracker::registry_config rc;
    rc.interval = core::seconds(5);
    rc.seed = opt_.seed;
    tracker_ = std::make_shared<tracker::server>(io_.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), rc,
                                                 tracker::server_config{});
    tracker_url_ = fmt::format("http://127.0.0.1:{}", tracker_->local_endpoint().port());
    asio::co_spawn(io_, tracker_->run(), net::log_errors("swarmsim: tracker"));

    peer::node_config sc;
    sc.channel = key_.public_key;
    sc.self = core::peer_id::random(rng_);
    sc.is_source = true;
    sc.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    sc.max_peers = std::max<std::size_t>(opt_.max_peers, 16);
    sc.target_peers = 0;
    sc.upload_limit = opt_.source_cap_bps / 8;
    sc.max_upload_backlog = core::from_seconds(opt_.upload_backlog);
    sc.seed = rng_();
    source_ = std::make_shared<peer::node>(io_.get_executor(), sc);
    tracker::client_config tc;
    std::string err;
    tc.urls = {*tracker::parse_tracker_url(tracker_url_, err)};
    tc.params.channel = key_.public_key;
    tc.params.peer = sc.self;
    tc.params.port = source_->advertised_port();
    tc.params.is_source = true;
    tc.params.name = "swarmsim";
    tc.params.numwant = 0;
    source_announcer_ = std::make_shared<tracker::client>(io_.get_executor(), tc, nullptr);
    asio::co_spawn(io_, source_->run(), net::log_errors("swarmsim: source"));
    asio::co_spawn(io_, source_announcer_->run(), net::log_errors("swarmsim: source announcer"));

    std::uniform_real_distribution<double> cap(opt_.cap_min_bps, opt_.cap_max_bps);
    std::uniform_real_distribution<double> join(0, opt_.join_window);
    std::uniform_real_distribution<double> leave(opt_.join_window + opt_.buffer, std::max(opt_.join_window + opt_.buffer, opt_.duration * 0.8));
    for (int i = 0; i < opt_.peers; ++i) {
        auto p = std::make_unique<sim_peer>();
        p->index = i;
        p->cap_bps = cap(rng_);
        p->start_s = join(rng_);
        peers_.push_back(std::move(p));
    }
    // Churn: that fraction of the peers leaves at a random time and is replaced at once.
    std::vector<std::size_t> order(peers_.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng_);
    for (std::size_t k = 0; k < static_cast<std::size_t>(std::lround(opt_.churn * opt_.peers)); ++k) {
        peers_[order[k]]->leave_s = leave(rng_);
    }
    asio::co_spawn(io_, produce(this), net::log_errors("swarmsim: producer"));
    asio::co_spawn(io_, drive(this), net::log_errors("swarmsim: driver"));
    io_.run();
}

boost::json::object simulation::report() const {
    std::vector<double> continuity;
    std::vector<double> node_continuity;
    std::vector<double> startup;
    std::vector<double> lags;
    std::vector<double> caps;
    bool identical = true;
    std::uint64_t wire_out = 0;
    std::uint64_t payload_out = 0;
    int never_played = 0;
    swarm::scheduler_stats sched;
    peer::playout_stats playout;
    player_continuity player;
    std::uint64_t duplicates = 0;
    std::uint64_t rejects_sent = 0;
    double busy = 0;  // sum over peers of payload sent / (cap * time online)
    // The measurement window: each peer's upload against its cap, and what its player got.
    std::vector<double> upload_bps;
    std::vector<double> upload_over_cap;
    double window_cap_bits = 0;     // sum of cap x time in the window
    double window_out_bits = 0;     // bits uploaded in the window
    double window_played_bits = 0;  // bits the players got in the window
    double window_peer_s = 0;       // peer-seconds in the window
    for (const auto& p : peers_) {
        caps.push_back(p->cap_bps);
        const auto& s = p->final_stats;
        sched.requests += s.scheduler.requests;
        sched.duplicate_requests += s.scheduler.duplicate_requests;
        sched.timeouts += s.scheduler.timeouts;
        sched.rejects += s.scheduler.rejects;
        sched.missed_deadline += s.scheduler.missed_deadline;
        playout.played += s.playout.played;
        playout.skipped += s.playout.skipped;
        playout.late += s.playout.late;
        duplicates += s.duplicate_chunks;
        rejects_sent += s.rejects_sent;
        if (p->online_s > 0) busy += static_cast<double>(s.payload_bytes_out) * 8 / (p->cap_bps * p->online_s);
        wire_out += s.wire_bytes_out;
        payload_out += s.payload_bytes_out;
        identical = identical && p->mismatches == 0;
        if (p->window_from_s) {
            const double online = p->stopped_s - *p->window_from_s;
            if (online >= 2) {
                const double bits = static_cast<double>(s.wire_bytes_out - p->window_wire_out) * 8;
                upload_bps.push_back(bits / online);
                upload_over_cap.push_back(bits / online / p->cap_bps);
                window_cap_bits += p->cap_bps * online;
                window_out_bits += bits;
                window_played_bits += static_cast<double>(p->played_bytes - p->window_played_bytes) * 8;
                window_peer_s += online;
            }
        }
        if (p->delivered.empty()) {
            // A peer that had enough time and played nothing counts as continuity 0.
            if (p->left || opt_.duration - p->start_s < opt_.buffer + 5) continue;
            ++never_played;
            continuity.push_back(0);
            node_continuity.push_back(s.playout.continuity());
            continue;
        }
        const auto c = continuity_of(*p, p->stopped_wall);
        player.due += c.due;
        player.on_time += c.on_time;
        continuity.push_back(c.value());
        node_continuity.push_back(s.playout.continuity());
        if (opt_.per_peer)
            std::cout << fmt::format("peer {:3d} start {:5.2f} in {:4d} dup {:3d} out {:4d} req {:4d} done {:4d} unsol {:3d} to {:3d} rej {:3d} miss {:4d} played {:4d} skipped {:4d} late {:4d} due {:4d} on_time {:4d} nb {}\n",
                                     p->index, p->start_s, s.chunks_in, s.duplicate_chunks, s.chunks_out, s.scheduler.requests, s.scheduler.completed,
                                     s.scheduler.unsolicited, s.scheduler.timeouts, s.scheduler.rejects, s.scheduler.missed_deadline,
                                     s.playout.played, s.playout.skipped, s.playout.late, c.due, c.on_time, s.neighbours);
        if (p->startup_s) startup.push_back(*p->startup_s);
        lags.insert(lags.end(), p->lags.begin(), p->lags.end());
    }
    const auto src = source_->stats();
    wire_out += src.wire_bytes_out;
    payload_out += src.payload_bytes_out;
    const double n = opt_.peers;
    const double u_s = opt_.source_cap_bps > 0 ? opt_.source_cap_bps : 1e12;
    double sum_u = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(opt_.peers) && i < peers_.size(); ++i) sum_u += peers_[i]->cap_bps;
    const double median_cap = quantile(caps, 0.5);
    const double chunk_tx = static_cast<double>(chunk_bytes_) * 8 / median_cap;
    const double capacity = std::min(u_s, (u_s + sum_u) / n);
    auto mean_of = [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    };
    auto min_of = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); };
    auto max_of = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); };

    // The source in the window (a capped source's uplink is part of the capacity).
    const double window_s = window_from_s_ ? end_s_ - *window_from_s_ : 0.0;
    boost::json::value source_bps = nullptr;
    boost::json::value source_over_cap = nullptr;
    if (window_s > 0) {
        const double bits = static_cast<double>(src.wire_bytes_out - source_window_wire_out_) * 8;
        source_bps = bits / window_s;
        if (opt_.source_cap_bps > 0) {
            source_over_cap = bits / window_s / opt_.source_cap_bps;
            window_cap_bits += opt_.source_cap_bps * window_s;
            window_out_bits += bits;
        }
    }
    const double stream_bps = window_peer_s > 0 ? window_played_bits / window_peer_s : 0.0;
    boost::json::object measured{
        {"window_s", window_from_s_ ? boost::json::value(boost::json::array{*window_from_s_, end_s_}) : boost::json::value(nullptr)},
        {"peers", upload_bps.size()},
        {"peer_upload_bps", stats3(upload_bps)},
        {"peer_upload_over_cap", boost::json::object{{"mean", mean_of(upload_over_cap)}, {"max", max_of(upload_over_cap)}}},
        {"source_upload_bps", source_bps},
        {"source_upload_over_cap", source_over_cap},
        {"upload_utilisation", window_cap_bits > 0 ? window_out_bits / window_cap_bits : 0.0},
        {"stream_bps", stream_bps},
        {"rate_over_capacity", stream_bps / capacity},
    };
    return boost::json::object{
        {"config", boost::json::object{{"peers", opt_.peers}, {"duration_s", opt_.duration}, {"rate_bps", opt_.rate_bps},
                                       {"upload_cap_bps", boost::json::array{opt_.cap_min_bps, opt_.cap_max_bps}},
                                       {"source_cap_bps", opt_.source_cap_bps}, {"churn", opt_.churn},
                                       {"buffer_s", opt_.buffer}, {"upload_backlog_s", opt_.upload_backlog}, {"chunk_seconds", opt_.chunk_seconds},
                                       {"seed", opt_.seed}, {"mode", "in-process"}}},
        {"continuity", boost::json::object{{"mean", mean_of(continuity)}, {"min", min_of(continuity)},
                                           {"peers", continuity.size()}, {"never_played", never_played}}},
        {"startup_s", stats3(startup)},
        {"lag_s", stats3(lags)},
        {"source_upload_ratio", produced_bytes_ ? static_cast<double>(src.wire_bytes_out) / static_cast<double>(produced_bytes_) : 0.0},
        {"overhead_ratio", payload_out ? static_cast<double>(wire_out - payload_out) / static_cast<double>(payload_out) : 0.0},
        {"identical", identical},
        {"lag_bound_s", opt_.chunk_seconds + std::ceil(std::log2(std::max(2.0, n))) * chunk_tx},
        {"capacity_bps", capacity},
        {"resource_index", (u_s + sum_u) / (n * opt_.rate_bps)},
        {"measured", std::move(measured)},
        {"diagnostics", boost::json::object{{"requests", sched.requests}, {"duplicate_requests", sched.duplicate_requests},
                                            {"request_timeouts", sched.timeouts}, {"rejects", sched.rejects},
                                            {"missed_deadline", sched.missed_deadline}, {"duplicate_chunks", duplicates},
                                            {"peer_upload_utilisation", peers_.empty() ? 0.0 : busy / static_cast<double>(peers_.size())},
                                            {"node_continuity", boost::json::object{{"mean", mean_of(node_continuity)}, {"min", min_of(node_continuity)}}},
                                            {"chunks_played", playout.played}, {"chunks_skipped", playout.skipped},
                                            {"chunks_late", playout.late}, {"player_chunks_due", player.due},
                                            {"player_chunks_on_time", player.on_time}}},
        {"stream_bytes", produced_bytes_},
        {"chunks", produced_.size()},
    };
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::string cap = "2000000";
    po::options_description desc(
        "Usage: swarmsim [options]\n\n"
        "Runs a whole swarm on 127.0.0.1 in one process: a tracker, a source publishing a synthetic\n"
        "stream at --rate, and --peers peers (real TCP between them, each with its upload cap), then\n"
        "prints the metrics of DESIGN.md and writes them as JSON. Rates and caps are in bits per second.\n\n"
        "With --processes, the swarm is made of the real programs, one process each: pixtream-tracker,\n"
        "pixtream-source (its stdin fed by swarmsim with pseudo-random bytes at --rate, cut into raw\n"
        "chunks of --chunk-seconds), and pixtream-peer for every peer (--upload-limit = its cap / 8,\n"
        "--buffer, --max-peers). swarmsim reads every peer's output as a raw-TCP player and checks it\n"
        "against what it fed the source; the metrics come from each peer's GET /stats, sampled every\n"
        "second and read once more just before the peer is stopped (or, with --churn, SIGKILLed and\n"
        "replaced). Every child is stopped (SIGTERM, then SIGKILL) when swarmsim ends, however it ends.\n\n"
        "Options");
    // clang-format off
    desc.add_options()
        ("help,h", "show this help and exit")
        ("peers", po::value(&opt.peers)->default_value(opt.peers), "number of peers")
        ("duration", po::value(&opt.duration)->default_value(opt.duration), "seconds to run")
        ("rate", po::value(&opt.rate_bps)->default_value(opt.rate_bps), "stream bitrate (bit/s)")
        ("upload-cap", po::value(&cap)->default_value(cap),
         "each peer's upload cap (bit/s): one value, or MIN:MAX for caps drawn uniformly between them")
        ("source-cap", po::value(&opt.source_cap_bps)->default_value(opt.source_cap_bps), "the source's upload cap (bit/s); 0: unlimited")
        ("churn", po::value(&opt.churn)->default_value(opt.churn),
         "fraction of peers that leave at a random time during the run (each replaced by a newcomer)")
        ("buffer", po::value(&opt.buffer)->default_value(opt.buffer), "peers' playout buffer (s)")
        ("upload-backlog", po::value(&opt.upload_backlog)->default_value(opt.upload_backlog),
         "seconds of queued upload beyond which a node REJECTs requests (node_config::max_upload_backlog)")
        ("chunk-seconds", po::value(&opt.chunk_seconds)->default_value(opt.chunk_seconds), "stream time per chunk")
        ("join-window", po::value(&opt.join_window)->default_value(opt.join_window), "peers join at random times in [0, this] (s)")
        ("max-peers", po::value(&opt.max_peers)->default_value(opt.max_peers), "connections per peer at most")
        ("seed", po::value(&opt.seed)->default_value(opt.seed), "random seed")
        ("report", po::value(&opt.report), "write the metrics as JSON to this file")
        ("plot", po::value(&opt.plot_dir), "write time series (CSV) and, with gnuplot, a PNG to this directory")
        ("resource-index", po::value<double>(),
         "instead of --upload-cap: every peer's cap set so that (source cap + sum of peer caps) / (peers x rate) is this")
        ("per-peer", po::bool_switch(&opt.per_peer), "also print one line of counters per peer")
        ("quiet", po::bool_switch(&opt.quiet), "no progress line")
        ("processes", po::bool_switch(&opt.processes),
         "run the real programs as child processes instead of nodes in this process (at most 200 peers)")
        ("input", po::value<std::string>(),
         "with --processes: feed the source this media file (looped) at --rate instead of pseudo-random bytes;"
         " give --rate as the file's bitrate")
        ("bin-dir", po::value<std::string>(),
         "with --processes: the directory holding pixtream-tracker, pixtream-source and pixtream-peer"
         " (default: the programs of this build)");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "swarmsim: " << e.what() << "\nTry 'swarmsim --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return 0;
    }
    auto usage = [](const std::string& m) {
        std::cerr << "swarmsim: " << m << "\nTry 'swarmsim --help'.\n";
        return 2;
    };
    try {
        const auto colon = cap.find(':');
        opt.cap_min_bps = std::stod(cap.substr(0, colon));
        opt.cap_max_bps = colon == std::string::npos ? opt.cap_min_bps : std::stod(cap.substr(colon + 1));
    } catch (const std::exception&) {
        return usage("--upload-cap must be BPS or MIN:MAX");
    }
    if (opt.peers < 1 || opt.peers > 2000) return usage("--peers must be 1 to 2000");
    if (vm.count("resource-index")) {
        if (!vm["upload-cap"].defaulted()) return usage("give --upload-cap or --resource-index, not both");
        const double ri = vm["resource-index"].as<double>();
        const double each = (ri * opt.peers * opt.rate_bps - opt.source_cap_bps) / opt.peers;
        if (!(ri > 0) || opt.source_cap_bps <= 0 || !(each > 0))
            return usage("--resource-index needs a positive index, a --source-cap, and leaves peers a positive cap");
        opt.cap_min_bps = opt.cap_max_bps = each;
    }
    if (!(opt.duration > 0) || !(opt.rate_bps >= 8000) || !(opt.cap_min_bps > 0) || opt.cap_max_bps < opt.cap_min_bps)
        return usage("--duration, --rate (>= 8000) and --upload-cap must be positive, MIN <= MAX");
    if (opt.churn < 0 || opt.churn > 1) return usage("--churn must be between 0 and 1");
    if (!(opt.chunk_seconds >= 0.05 && opt.chunk_seconds <= 5)) return usage("--chunk-seconds must be 0.05 to 5");
    if (opt.rate_bps / 8 * opt.chunk_seconds > static_cast<double>(wire::max_chunk_payload))
        return usage("--rate * --chunk-seconds makes chunks larger than 1 MiB");
    if (vm.count("bin-dir") && !opt.processes) return usage("--bin-dir goes with --processes");
    if (vm.count("input")) {
        if (!opt.processes) return usage("--input goes with --processes");
        const auto path = vm["input"].as<std::string>();
        std::ifstream in(path, std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (!in.good() && !in.eof()) return usage("cannot read --input " + path);
        if (bytes.empty()) return usage("--input " + path + " is missing or empty");
        opt.input.resize(bytes.size());
        std::memcpy(opt.input.data(), bytes.data(), bytes.size());
    }
    if (opt.processes) {
        if (opt.peers > max_process_peers)
            return usage(fmt::format("--processes runs at most {} peers (one process each); use the in-process mode for more",
                                     max_process_peers));
        const std::string dir = vm.count("bin-dir") ? vm["bin-dir"].as<std::string>() : std::string();
        auto exe = [&](const char* name, const char* built) {
            return dir.empty() ? std::string(built) : (std::filesystem::path(dir) / name).string();
        };
        opt.tracker_exe = exe("pixtream-tracker", SWARMSIM_TRACKER_EXE);
        opt.source_exe = exe("pixtream-source", SWARMSIM_SOURCE_EXE);
        opt.peer_exe = exe("pixtream-peer", SWARMSIM_PEER_EXE);
        for (const auto* path : {&opt.tracker_exe, &opt.source_exe, &opt.peer_exe}) {
            if (::access(path->c_str(), X_OK) != 0) {
                std::cerr << "swarmsim: cannot run " << *path << ": " << std::strerror(errno)
                          << (dir.empty() ? " (build the programs, or give --bin-dir)" : "") << '\n';
                return 1;
            }
        }
    }

    // Every peer holds a listening socket and a dozen connections: lift the descriptor limit.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    spdlog::set_level(spdlog::level::err);
    boost::json::object r;
    std::vector<series_point> series;
    if (opt.processes) {
        auto run = run_processes(opt);
        if (run.status != 0) return run.status;
        r = std::move(run.report);
        series = std::move(run.series);
    } else {
        asio::io_context io(1);
        simulation sim(io, opt);
        sim.run();
        r = sim.report();
        series = sim.series();
    }
    print_table(opt, r);
    if (!opt.report.empty()) {
        std::ofstream out(opt.report);
        out << boost::json::serialize(r) << '\n';
        if (!out) {
            std::cerr << "swarmsim: cannot write " << opt.report << '\n';
            return 1;
        }
    }
    if (!opt.plot_dir.empty()) write_plot(opt.plot_dir, series);
    return 0;
}
