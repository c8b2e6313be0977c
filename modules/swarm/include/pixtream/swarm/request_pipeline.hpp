#pragma once
// Requests in flight per neighbour: slots, timeouts, per-neighbour delivery estimates and retry penalties.
// Pure: time is always a parameter.
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace pixtream::swarm {

// Tunables of the request pipeline. Out-of-range values are clamped by request_pipeline's constructor.
struct pipeline_config {
    // Requests outstanding at one neighbour, in [1, request_pipeline::max_in_flight_limit].
    std::size_t max_in_flight_per_peer = 8;
    // Timeout of a request to a neighbour we have no delivery measurement of yet.
    core::duration request_timeout = std::chrono::seconds(2);
    // Once measured, a request times out after timeout_factor x its expected completion time,
    // clamped to [min_timeout, max_timeout].
    core::duration min_timeout = std::chrono::milliseconds(500);
    core::duration max_timeout = std::chrono::seconds(10);
    double timeout_factor = 4.0;
    // Per-chunk delivery time assumed for a neighbour we have not measured yet (the neutral prior).
    core::duration prior_chunk_time = std::chrono::milliseconds(200);
    // How long a neighbour is passed over for a chunk it let time out.
    core::duration retry_penalty = std::chrono::seconds(2);
    // ... and for a chunk it REJECTed. Short: a REJECT mostly means "my uplink is busy right now" (its
    // backlog bound), and the first holders of a fresh chunk are the only ones for a while; a long
    // penalty left requesters idle for seconds while the chunk was one request away.
    core::duration reject_penalty = std::chrono::milliseconds(300);
};

// One request: which neighbour, which chunk.
struct request_ref {
    core::peer_id peer;
    core::chunk_id id;
    friend bool operator==(const request_ref&, const request_ref&) = default;
};

// Tracks the REQUESTs we have outstanding at each neighbour. Calls naming an unknown peer are ignored
// (they return false / zero) except add_peer.
class request_pipeline {
public:
    // The protocol's cap on outstanding requests at one neighbour (wire::max_requests_in_flight).
    static constexpr std::size_t max_in_flight_limit = 64;

    // One outstanding request.
    struct request {
        core::chunk_id id;
        core::time_point sent;
        core::time_point expected;    // estimated arrival when it was sent
        core::time_point timeout_at;  // when expire() gives up on it
    };

    // A chunk this neighbour is passed over for until `until`.
    struct penalty {
        core::chunk_id id;
        core::time_point until;
    };

    // What we know about one neighbour.
    struct peer_state {
        std::vector<request> in_flight;
        std::vector<penalty> penalties;
        // Smoothed time to deliver one chunk (service time, queueing behind earlier requests excluded).
        std::optional<core::duration> chunk_time;
        double bytes_per_second = 0;  // smoothed delivery rate of requested chunks
        core::time_point last_completion{};
        std::uint64_t completed = 0;
        std::uint64_t timeouts = 0;
        std::uint64_t rejects = 0;

        // The outstanding request for `id`, or nullptr.
        const request* find(core::chunk_id id) const noexcept;
        // Whether this neighbour is passed over for `id` at `now`.
        bool penalised(core::chunk_id id, core::time_point now) const noexcept;
    };

    explicit request_pipeline(const pipeline_config& config = {});

    // The configuration in effect (after clamping).
    const pipeline_config& config() const noexcept { return config_; }
    std::size_t limit() const noexcept { return config_.max_in_flight_per_peer; }

    // Registers a neighbour; returns false if it was known already.
    bool add_peer(const core::peer_id& peer);
    // Forgets a neighbour; its outstanding requests are freed and appended to `freed` if given.
    void remove_peer(const core::peer_id& peer, std::vector<core::chunk_id>* freed = nullptr);
    bool contains(const core::peer_id& peer) const noexcept { return peers_.contains(peer); }
    std::size_t peer_count() const noexcept { return peers_.size(); }
    // The neighbour's state, or nullptr. Valid until that peer is removed.
    const peer_state* find(const core::peer_id& peer) const noexcept;

    // Outstanding requests at `peer` / in total / for chunk `id` across all neighbours.
    std::size_t in_flight(const core::peer_id& peer) const noexcept;
    std::size_t in_flight_total() const noexcept { return total_; }
    std::size_t in_flight_count(core::chunk_id id) const noexcept;
    bool is_in_flight(core::chunk_id id) const noexcept { return in_flight_count(id) > 0; }
    bool is_in_flight(const core::peer_id& peer, core::chunk_id id) const noexcept;
    // Whether `peer` is known and below its in-flight limit.
    bool has_free_slot(const core::peer_id& peer) const noexcept;

    // Estimated time for `state` to deliver one chunk (the prior while unmeasured).
    core::duration chunk_time(const peer_state& state) const noexcept;
    // Estimated arrival of one more request sent to `state` at `now`: behind everything already queued there.
    core::time_point expected_completion(const peer_state& state, core::time_point now) const noexcept;

    // Records a REQUEST sent at `now`. False (nothing recorded) for an unknown peer, a full pipeline or
    // a chunk already outstanding at that peer.
    bool add(const core::peer_id& peer, core::chunk_id id, core::time_point now);
    // A CHUNK arrived: completes the request and updates the neighbour's estimates. False if `id` was not
    // outstanding at `peer` (nothing changes then; `bytes` is the payload size).
    bool complete(const core::peer_id& peer, core::chunk_id id, std::size_t bytes, core::time_point now);
    // A REJECT arrived: frees the request and penalises `peer` for `id` (reject_penalty). False if it
    // was not outstanding.
    bool reject(const core::peer_id& peer, core::chunk_id id, core::time_point now);
    // Frees a request we cancel ourselves, without penalty. False if it was not outstanding.
    bool cancel(const core::peer_id& peer, core::chunk_id id);
    // Frees every request whose timeout is at or before `now`, penalises its neighbour for that chunk,
    // counts it as a slow delivery, and appends it to `out`. Also forgets expired penalties.
    void expire(core::time_point now, std::vector<request_ref>& out);
    // Frees every request for an id below `base` (appended to `out`) and forgets penalties below it.
    void drop_below(core::chunk_id base, std::vector<request_ref>& out);

    // Earliest request timeout or penalty expiry, if any: when expire() next has work to do or a
    // penalised neighbour becomes eligible again.
    std::optional<core::time_point> next_timeout() const noexcept;

    // Calls f(const core::peer_id&, const peer_state&) for every neighbour.
    template <class F>
    void for_each_peer(F&& f) const {
        for (const auto& [peer, state] : peers_) f(peer, state);
    }

private:
    void release(core::chunk_id id) noexcept;
    // Removes the request for `id` outstanding at `peer` (setting `state` when the peer is known).
    std::optional<request> take(const core::peer_id& peer, core::chunk_id id, peer_state*& state) noexcept;
    void penalise(peer_state& state, core::chunk_id id, core::time_point now, core::duration how_long);
    void observe(peer_state& state, const request& r, core::time_point now) noexcept;

    pipeline_config config_;
    std::unordered_map<core::peer_id, peer_state> peers_;
    std::unordered_map<core::chunk_id, std::uint32_t> per_chunk_;  // outstanding requests per chunk
    std::size_t total_ = 0;
};

}  // namespace pixtream::swarm
