#include "pixtream/swarm/request_pipeline.hpp"

#include <algorithm>

namespace pixtream::swarm {
namespace {

using namespace std::chrono_literals;

// Weight of a new sample in the smoothed estimates.
constexpr std::int64_t smoothing_divisor = 4;

core::duration scaled(core::duration d, double factor) noexcept {
    return std::chrono::duration_cast<core::duration>(std::chrono::duration<double, core::duration::period>(
        static_cast<double>(d.count()) * factor));
}

pipeline_config clamped(pipeline_config c) noexcept {
    c.max_in_flight_per_peer = std::clamp<std::size_t>(c.max_in_flight_per_peer, 1,
                                                       request_pipeline::max_in_flight_limit);
    c.request_timeout = std::max<core::duration>(c.request_timeout, 1ms);
    c.min_timeout = std::max<core::duration>(c.min_timeout, 1ms);
    c.max_timeout = std::max(c.max_timeout, c.min_timeout);
    if (!(c.timeout_factor >= 1.0)) c.timeout_factor = 1.0;
    c.prior_chunk_time = std::max<core::duration>(c.prior_chunk_time, 1us);
    c.retry_penalty = std::max<core::duration>(c.retry_penalty, 0ms);
    c.reject_penalty = std::max<core::duration>(c.reject_penalty, 0ms);
    return c;
}

}  // namespace

const request_pipeline::request* request_pipeline::peer_state::find(core::chunk_id id) const noexcept {
    for (const auto& r : in_flight) {
        if (r.id == id) return &r;
    }
    return nullptr;
}

bool request_pipeline::peer_state::penalised(core::chunk_id id, core::time_point now) const noexcept {
    for (const auto& p : penalties) {
        if (p.id == id) return p.until > now;
    }
    return false;
}

request_pipeline::request_pipeline(const pipeline_config& config) : config_(clamped(config)) {}

bool request_pipeline::add_peer(const core::peer_id& peer) {
    const auto [it, added] = peers_.try_emplace(peer);
    if (added) it->second.in_flight.reserve(config_.max_in_flight_per_peer);
    return added;
}

void request_pipeline::remove_peer(const core::peer_id& peer, std::vector<core::chunk_id>* freed) {
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    for (const auto& r : it->second.in_flight) {
        release(r.id);
        if (freed != nullptr) freed->push_back(r.id);
    }
    peers_.erase(it);
}

const request_pipeline::peer_state* request_pipeline::find(const core::peer_id& peer) const noexcept {
    const auto it = peers_.find(peer);
    return it == peers_.end() ? nullptr : &it->second;
}

std::size_t request_pipeline::in_flight(const core::peer_id& peer) const noexcept {
    const auto* state = find(peer);
    return state == nullptr ? 0 : state->in_flight.size();
}

std::size_t request_pipeline::in_flight_count(core::chunk_id id) const noexcept {
    const auto it = per_chunk_.find(id);
    return it == per_chunk_.end() ? 0 : it->second;
}

bool request_pipeline::is_in_flight(const core::peer_id& peer, core::chunk_id id) const noexcept {
    const auto* state = find(peer);
    return state != nullptr && state->find(id) != nullptr;
}

bool request_pipeline::has_free_slot(const core::peer_id& peer) const noexcept {
    const auto* state = find(peer);
    return state != nullptr && state->in_flight.size() < limit();
}

core::duration request_pipeline::chunk_time(const peer_state& state) const noexcept {
    return state.chunk_time.value_or(config_.prior_chunk_time);
}

core::time_point request_pipeline::expected_completion(const peer_state& state, core::time_point now) const noexcept {
    return now + chunk_time(state) * static_cast<core::duration::rep>(state.in_flight.size() + 1);
}

bool request_pipeline::add(const core::peer_id& peer, core::chunk_id id, core::time_point now) {
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return false;
    auto& state = it->second;
    if (state.in_flight.size() >= limit() || state.find(id) != nullptr) return false;
    const auto expected = expected_completion(state, now);
    const auto timeout = state.chunk_time
                             ? std::clamp(scaled(expected - now, config_.timeout_factor), config_.min_timeout,
                                          config_.max_timeout)
                             : config_.request_timeout;
    state.in_flight.push_back(request{id, now, expected, now + timeout});
    ++per_chunk_[id];
    ++total_;
    return true;
}

void request_pipeline::release(core::chunk_id id) noexcept {
    const auto it = per_chunk_.find(id);
    if (it != per_chunk_.end() && --it->second == 0) per_chunk_.erase(it);
    --total_;
}

void request_pipeline::penalise(peer_state& state, core::chunk_id id, core::time_point now, core::duration how_long) {
    const auto until = now + how_long;
    for (auto& p : state.penalties) {
        if (p.id == id) {
            p.until = std::max(p.until, until);
            return;
        }
    }
    state.penalties.push_back(penalty{id, until});
}

void request_pipeline::observe(peer_state& state, const request& r, core::time_point now) noexcept {
    // Service time: from when the neighbour could start on this request (its sending, or the previous
    // delivery if it was busy) to its arrival.
    const auto sample = std::max<core::duration>(now - std::max(r.sent, state.last_completion), 1us);
    if (state.chunk_time) {
        *state.chunk_time += (sample - *state.chunk_time) / smoothing_divisor;
    } else {
        state.chunk_time = sample;
    }
}

std::optional<request_pipeline::request> request_pipeline::take(const core::peer_id& peer, core::chunk_id id,
                                                                peer_state*& state) noexcept {
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return std::nullopt;
    state = &it->second;
    auto& list = state->in_flight;
    const auto r = std::find_if(list.begin(), list.end(), [&](const request& q) { return q.id == id; });
    if (r == list.end()) return std::nullopt;
    const auto taken = *r;
    list.erase(r);
    release(id);
    return taken;
}

bool request_pipeline::complete(const core::peer_id& peer, core::chunk_id id, std::size_t bytes,
                                core::time_point now) {
    peer_state* state = nullptr;
    const auto r = take(peer, id, state);
    if (!r) return false;
    const auto service = std::max<core::duration>(now - std::max(r->sent, state->last_completion), 1us);
    const double rate = static_cast<double>(bytes) / core::to_seconds(service);
    state->bytes_per_second = state->completed == 0
                                  ? rate
                                  : state->bytes_per_second + (rate - state->bytes_per_second) /
                                                                  static_cast<double>(smoothing_divisor);
    observe(*state, *r, now);
    state->last_completion = std::max(state->last_completion, now);
    ++state->completed;
    return true;
}

bool request_pipeline::reject(const core::peer_id& peer, core::chunk_id id, core::time_point now) {
    peer_state* state = nullptr;
    if (!take(peer, id, state)) return false;
    ++state->rejects;
    penalise(*state, id, now, config_.reject_penalty);
    return true;
}

bool request_pipeline::cancel(const core::peer_id& peer, core::chunk_id id) {
    peer_state* state = nullptr;
    return take(peer, id, state).has_value();
}

void request_pipeline::expire(core::time_point now, std::vector<request_ref>& out) {
    for (auto& [peer, state] : peers_) {
        std::erase_if(state.penalties, [&](const penalty& p) { return p.until <= now; });
        for (std::size_t i = 0; i < state.in_flight.size();) {
            const auto r = state.in_flight[i];
            if (r.timeout_at > now) {
                ++i;
                continue;
            }
            observe(state, r, now);  // a timeout is a (very) slow delivery
            state.in_flight.erase(state.in_flight.begin() + static_cast<std::ptrdiff_t>(i));
            release(r.id);
            ++state.timeouts;
            penalise(state, r.id, now, config_.retry_penalty);
            out.push_back(request_ref{peer, r.id});
        }
    }
}

void request_pipeline::drop_below(core::chunk_id base, std::vector<request_ref>& out) {
    for (auto& [peer, state] : peers_) {
        std::erase_if(state.penalties, [&](const penalty& p) { return p.id < base; });
        for (std::size_t i = 0; i < state.in_flight.size();) {
            const auto id = state.in_flight[i].id;
            if (id >= base) {
                ++i;
                continue;
            }
            state.in_flight.erase(state.in_flight.begin() + static_cast<std::ptrdiff_t>(i));
            release(id);
            out.push_back(request_ref{peer, id});
        }
    }
}

std::optional<core::time_point> request_pipeline::next_timeout() const noexcept {
    std::optional<core::time_point> next;
    const auto consider = [&](core::time_point t) {
        if (!next || t < *next) next = t;
    };
    for (const auto& [peer, state] : peers_) {
        for (const auto& r : state.in_flight) consider(r.timeout_at);
        for (const auto& p : state.penalties) consider(p.until);
    }
    return next;
}

}  // namespace pixtream::swarm
