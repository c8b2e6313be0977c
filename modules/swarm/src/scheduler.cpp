#include "pixtream/swarm/scheduler.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>
#include <tuple>

namespace pixtream::swarm {
namespace {

// splitmix64's finaliser: a fixed, well-mixed hash for seeded tie-breaking.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31U);
}

constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
    const auto q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

constexpr std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
    constexpr auto hi = std::numeric_limits<std::int64_t>::max();
    constexpr auto lo = std::numeric_limits<std::int64_t>::min();
    if (b > 0 && a > hi - b) return hi;
    if (b < 0 && a < lo - b) return lo;
    return a + b;
}

// Offset from `playhead` of the first chunk whose deadline is after `t`, clamped to [0, window].
std::size_t first_due_after(const deadline_model& m, core::chunk_id playhead, core::time_point t,
                            std::size_t window) noexcept {
    // deadline(anchor + k) > t  <=>  k * interval > t - anchor_deadline
    //                          <=>  k > floor((t - anchor_deadline) / interval)
    const auto k = saturating_add(floor_div((t - m.anchor_deadline).count(), m.chunk_interval.count()), 1);
    const auto offset = saturating_add(distance(playhead, m.anchor), k);
    return static_cast<std::size_t>(std::clamp<std::int64_t>(offset, 0, static_cast<std::int64_t>(window)));
}

scheduler_config clamped(scheduler_config c) noexcept {
    c.window = core::buffer_map(c.window).capacity();
    c.urgent_horizon = std::max<core::duration>(c.urgent_horizon, core::duration::zero());
    return c;
}

}  // namespace

scheduler::scheduler(const scheduler_config& config, core::chunk_id playhead)
    : config_(clamped(config)),
      availability_(config_.window, playhead),
      pipeline_(config_.pipeline),
      have_(core::buffer_map::max_capacity, playhead),
      missed_from_(playhead) {
    config_.pipeline = pipeline_.config();
}

void scheduler::set_window(core::chunk_id playhead) {
    if (playhead <= availability_.base()) return;
    availability_.advance_to(playhead);
    have_.advance_to(playhead);
    scratch_refs_.clear();
    pipeline_.drop_below(playhead, scratch_refs_);
    for (const auto& r : scratch_refs_) pending_.push_back(action{action_kind::cancel, r.peer, r.id});
    missed_from_ = std::max(missed_from_, playhead);
    deferred_.erase(deferred_.begin(), deferred_.lower_bound(playhead));
}

void scheduler::set_deadlines(const deadline_model& model) {
    if (model.chunk_interval <= core::duration::zero()) {
        throw std::invalid_argument("swarm::deadline_model: chunk_interval must be positive");
    }
    deadlines_ = model;
}

void scheduler::defer(core::chunk_id id, core::time_point until) {
    if (id < playhead() || id >= window_end() || have_.test(id)) return;
    deferred_[id] = until;
}

bool scheduler::deferred(core::chunk_id id, core::time_point now) const noexcept {
    const auto it = deferred_.find(id);
    return it != deferred_.end() && it->second > now;
}

std::optional<core::time_point> scheduler::next_timeout() const noexcept {
    auto t = pipeline_.next_timeout();
    for (const auto& [id, until] : deferred_) {
        if (!t || until < *t) t = until;
    }
    return t;
}

void scheduler::set_have(core::chunk_id id) {
    deferred_.erase(id);
    if (!have_.set(id)) return;
    cancel_everywhere(id);
}

void scheduler::cancel_everywhere(core::chunk_id id) {
    if (!pipeline_.is_in_flight(id)) return;
    scratch_refs_.clear();
    pipeline_.for_each_peer([&](const core::peer_id& peer, const request_pipeline::peer_state& state) {
        if (state.find(id) != nullptr) scratch_refs_.push_back(request_ref{peer, id});
    });
    for (const auto& r : scratch_refs_) {
        pipeline_.cancel(r.peer, r.id);
        pending_.push_back(action{action_kind::cancel, r.peer, r.id});
    }
}

void scheduler::add_peer(const core::peer_id& peer) {
    availability_.add_peer(peer);
    pipeline_.add_peer(peer);
}

void scheduler::remove_peer(const core::peer_id& peer) {
    availability_.remove_peer(peer);
    pipeline_.remove_peer(peer);
    std::erase_if(pending_, [&](const action& a) { return a.peer == peer; });
}

void scheduler::on_bitmap(const core::peer_id& peer, const core::buffer_map& map) {
    add_peer(peer);
    availability_.on_bitmap(peer, map);
}

void scheduler::on_have(const core::peer_id& peer, core::chunk_id id) {
    add_peer(peer);
    availability_.on_have(peer, id);
}

bool scheduler::on_chunk(const core::peer_id& peer, core::chunk_id id, std::size_t bytes, core::time_point now) {
    const bool answered = pipeline_.complete(peer, id, bytes, now);
    if (answered) {
        ++stats_.completed;
    } else {
        ++stats_.unsolicited;
    }
    set_have(id);
    return answered;
}

bool scheduler::on_reject(const core::peer_id& peer, core::chunk_id id, core::time_point now) {
    const bool outstanding = pipeline_.reject(peer, id, now);
    if (outstanding) ++stats_.rejects;
    return outstanding;
}

std::size_t scheduler::expire(core::time_point now) {
    scratch_refs_.clear();
    pipeline_.expire(now, scratch_refs_);
    for (const auto& r : scratch_refs_) pending_.push_back(action{action_kind::cancel, r.peer, r.id});
    stats_.timeouts += scratch_refs_.size();
    return scratch_refs_.size();
}

std::vector<action> scheduler::poll(core::time_point now) {
    std::vector<action> out;
    poll(now, out);
    return out;
}

void scheduler::poll(core::time_point now, std::vector<action>& out) {
    expire(now);
    std::erase_if(deferred_, [now](const auto& d) { return d.second <= now; });
    const auto base = playhead();
    const auto end = window_end();
    // [base, live): deadline passed. [live, urgent): urgent. [urgent, end): rarest-first.
    auto live = base;
    auto urgent = base;
    if (deadlines_) {
        live = base + first_due_after(*deadlines_, base, now, config_.window);
        urgent = base + first_due_after(*deadlines_, base, now + config_.urgent_horizon, config_.window);
    }
    // Past its modelled deadline: counted, but still fetched first. The model is a guess (a source that
    // paused cuts its next chunk later than the interval says); the playout decides when a chunk is given
    // up, and moves the window past it (set_window), which CANCELs what is still outstanding.
    for (auto id = have_.next_missing(missed_from_); id && *id < live; id = have_.next_missing(id->next())) {
        ++stats_.missed_deadline;
    }
    missed_from_ = std::max(missed_from_, live);
    stats_.cancels += pending_.size();
    out.insert(out.end(), pending_.begin(), pending_.end());
    pending_.clear();

    collect_free_peers();
    if (free_.empty()) return;

    // Late and urgent chunks, in deadline (= id) order.
    for (auto id = have_.next_missing(base); id && *id < urgent && !free_.empty();
         id = have_.next_missing(id->next())) {
        if (deferred_.contains(*id)) continue;
        if (pipeline_.is_in_flight(*id)) {
            // No duplicates for chunks already late: under overload they would only add to it.
            if (config_.endgame && *id >= live) consider_endgame(*id, now, out);
            continue;
        }
        const auto h = best_holder(*id, now, nullptr, std::nullopt);
        if (h < free_.size()) send(h, *id, now, out);
    }
    if (free_.empty()) return;

    // The rest, rarest first.
    queue_.clear();
    for (auto id = have_.next_missing(urgent); id && *id < end; id = have_.next_missing(id->next())) {
        const auto n = availability_.holders(*id);
        if (n == 0 || pipeline_.is_in_flight(*id) || deferred_.contains(*id)) continue;
        queue_.push_back(candidate_chunk{n, mix(config_.seed ^ id->value()), *id});
    }
    const auto later = [](const candidate_chunk& a, const candidate_chunk& b) {
        return std::tie(a.holders, a.key, a.id) > std::tie(b.holders, b.key, b.id);
    };
    std::make_heap(queue_.begin(), queue_.end(), later);
    while (!queue_.empty() && !free_.empty()) {
        std::pop_heap(queue_.begin(), queue_.end(), later);
        const auto id = queue_.back().id;
        queue_.pop_back();
        const auto h = best_holder(id, now, nullptr, std::nullopt);
        if (h < free_.size()) send(h, id, now, out);
    }
}

void scheduler::collect_free_peers() {
    free_.clear();
    pipeline_.for_each_peer([&](const core::peer_id& peer, const request_pipeline::peer_state& state) {
        if (state.in_flight.size() >= pipeline_.limit()) return;
        const auto* map = availability_.map_of(peer);
        if (map == nullptr || map->empty()) return;
        free_.push_back(candidate_peer{&peer, &state, map, state.in_flight.size(), pipeline_.chunk_time(state),
                                       static_cast<std::uint64_t>(std::hash<core::peer_id>{}(peer))});
    });
}

std::size_t scheduler::best_holder(core::chunk_id id, core::time_point now, const core::peer_id* skip,
                                   std::optional<core::time_point> before) const {
    std::size_t best = free_.size();
    core::duration best_eta{};
    std::uint64_t best_key = 0;
    const auto chunk_key = mix(config_.seed ^ mix(id.value()));
    for (std::size_t i = 0; i < free_.size(); ++i) {
        const auto& c = free_[i];
        if (!c.map->test(id)) continue;
        if (skip != nullptr && *c.peer == *skip) continue;
        if (c.state->penalised(id, now)) continue;
        const auto eta = c.chunk_time * static_cast<core::duration::rep>(c.in_flight + 1);
        if (before && now + eta >= *before) continue;
        const auto key = mix(chunk_key ^ c.hash);
        if (best == free_.size() || eta < best_eta ||
            (eta == best_eta && (key < best_key || (key == best_key && *c.peer < *free_[best].peer)))) {
            best = i;
            best_eta = eta;
            best_key = key;
        }
    }
    return best;
}

void scheduler::send(std::size_t holder, core::chunk_id id, core::time_point now, std::vector<action>& out) {
    auto& c = free_[holder];
    if (!pipeline_.add(*c.peer, id, now)) return;  // cannot happen: c has a free slot and not this chunk
    out.push_back(action{action_kind::request, *c.peer, id});
    ++stats_.requests;
    if (++c.in_flight >= pipeline_.limit()) {
        c = free_.back();
        free_.pop_back();
    }
}

void scheduler::consider_endgame(core::chunk_id id, core::time_point now, std::vector<action>& out) {
    if (pipeline_.in_flight_count(id) != 1) return;
    const core::peer_id* owner = nullptr;
    core::time_point eta{};
    pipeline_.for_each_peer([&](const core::peer_id& peer, const request_pipeline::peer_state& state) {
        if (const auto* r = state.find(id)) {
            owner = &peer;
            // An overdue request needs at least one more delivery time from now.
            eta = r->expected > now ? r->expected : now + pipeline_.chunk_time(state);
        }
    });
    if (owner == nullptr || eta <= deadlines_->deadline(id)) return;
    const auto h = best_holder(id, now, owner, eta);
    if (h == free_.size()) return;
    send(h, id, now, out);
    ++stats_.duplicate_requests;
}

}  // namespace pixtream::swarm
