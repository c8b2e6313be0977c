#pragma once
// The chunk scheduler: decides which chunk to REQUEST from which neighbour. Deadline-first near the
// playhead, rarest-first beyond; requests time out and are retried elsewhere. Pure and deterministic:
// no I/O, no clock (time is a parameter), no threads; randomness only from the configured seed.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"
#include "pixtream/swarm/availability.hpp"
#include "pixtream/swarm/deadline_model.hpp"
#include "pixtream/swarm/request_pipeline.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace pixtream::swarm {

// Tunables of the scheduler.
struct scheduler_config {
    // Chunks we want: [playhead, playhead + window), rounded like core::buffer_map's capacity.
    std::size_t window = 512;
    // A chunk whose deadline is within now + urgent_horizon is urgent: fetched in id order before anything else.
    core::duration urgent_horizon = std::chrono::seconds(3);
    // Allow one duplicate request for an urgent chunk whose outstanding request is expected to be late.
    bool endgame = true;
    // Seed of the tie-breaking among equally rare chunks and equally good neighbours.
    std::uint64_t seed = 0;
    pipeline_config pipeline{};
};

// What the network layer should send.
enum class action_kind : std::uint8_t { request, cancel };

// One message to send: REQUEST or CANCEL `id` to `peer`.
struct action {
    action_kind kind;
    core::peer_id peer;
    core::chunk_id id;
    friend bool operator==(const action&, const action&) = default;
};

// Running totals, for /stats and tests.
struct scheduler_stats {
    std::uint64_t requests = 0;            // REQUESTs emitted, duplicates included
    std::uint64_t duplicate_requests = 0;  // endgame duplicates among them
    std::uint64_t cancels = 0;             // CANCELs emitted
    std::uint64_t completed = 0;           // CHUNKs answering one of our requests
    std::uint64_t unsolicited = 0;         // CHUNKs we had not requested from that neighbour (pushed, or late)
    std::uint64_t rejects = 0;             // REJECTs of outstanding requests
    std::uint64_t timeouts = 0;            // requests given up on
    std::uint64_t missed_deadline = 0;     // chunks whose deadline passed while we lacked them (each once)
};

// Combines availability and the request pipeline into REQUEST/CANCEL decisions.
//
// Policy, at each poll(now):
//  1. timed-out requests are freed and CANCELled; their neighbour is penalised for that chunk;
//  2. chunks in the window whose deadline is at or before `now` are counted (missed_deadline, once each)
//     but still fetched, first: the deadline model is an estimate, and the caller's playout decides
//     when a chunk is given up (by moving the window, which CANCELs its requests);
//  3. late and urgent chunks (deadline within now + urgent_horizon) are requested in id order; with `endgame`, an
//     urgent chunk not yet late whose single outstanding request is expected after its deadline gets one duplicate at a
//     neighbour expected to deliver sooner;
//  4. the other chunks are requested rarest-first (fewest holders), ties broken by a seeded hash of the id;
//  5. each chunk goes to the holder with a free slot and the earliest expected completion
//     ((in flight + 1) x its per-chunk delivery time; a neutral prior while unmeasured), skipping
//     holders penalised for that chunk; ties broken by a seeded hash.
// Chunks we have, chunks already requested and chunks outside the window are never requested.
// Without a deadline model nothing is urgent or late: everything is rarest-first.
//
// Neighbours are added by add_peer/on_bitmap/on_have; on_chunk/on_reject/remove_peer for an unknown peer
// only do what does not need the peer (on_chunk still records the chunk as ours).
class scheduler {
public:
    explicit scheduler(const scheduler_config& config = {}, core::chunk_id playhead = core::chunk_id{0});

    // The configuration in effect (after clamping).
    const scheduler_config& config() const noexcept { return config_; }

    // ---- our window and deadlines
    // Moves the window to start at `playhead` (never back). Requests for ids below it are CANCELled.
    void set_window(core::chunk_id playhead);
    core::chunk_id playhead() const noexcept { return availability_.base(); }
    // One past the last chunk we want.
    core::chunk_id window_end() const noexcept { return availability_.end(); }
    // Sets (or replaces) the playback deadline model. Throws std::invalid_argument for a non-positive interval.
    void set_deadlines(const deadline_model& model);
    void clear_deadlines() noexcept { deadlines_.reset(); }
    const std::optional<deadline_model>& deadlines() const noexcept { return deadlines_; }

    // ---- our chunks
    // Records that we hold `id` (from any source); outstanding requests for it are CANCELled.
    // Ids below the playhead or more than core::buffer_map::max_capacity beyond it are ignored.
    void set_have(core::chunk_id id);
    bool has(core::chunk_id id) const noexcept { return have_.test(id); }

    // ---- neighbours
    // Registers a neighbour (idempotent).
    void add_peer(const core::peer_id& peer);
    // Forgets a neighbour: its holdings leave the counts and its outstanding requests are freed, to be
    // requested elsewhere at the next poll. No CANCEL is emitted to it.
    void remove_peer(const core::peer_id& peer);
    bool has_peer(const core::peer_id& peer) const noexcept { return availability_.contains(peer); }
    std::size_t peer_count() const noexcept { return availability_.peer_count(); }
    // A BUFFER_MAP from `peer` (replaces what we knew of it). Its base may differ from our playhead.
    void on_bitmap(const core::peer_id& peer, const core::buffer_map& map);
    // A HAVE from `peer`; ids ahead of our window are remembered as far as the neighbour's map reaches.
    void on_have(const core::peer_id& peer, core::chunk_id id);
    // A verified CHUNK from `peer` with a `bytes`-byte payload: completes our request (updating the
    // neighbour's estimates) and records the chunk as ours. Returns whether it answered our request.
    bool on_chunk(const core::peer_id& peer, core::chunk_id id, std::size_t bytes, core::time_point now);
    // A REJECT from `peer`: the chunk is requested elsewhere at the next poll, `peer` is penalised for it.
    // Returns whether the request was outstanding.
    bool on_reject(const core::peer_id& peer, core::chunk_id id, core::time_point now);

    // Holds `id` back: it is not requested before `until` (a push of it is expected). A later call
    // replaces the time; forgotten once we have it, it leaves the window, or the time passed.
    void defer(core::chunk_id id, core::time_point until);
    bool deferred(core::chunk_id id, core::time_point now) const noexcept;

    // ---- decisions
    // Frees requests timed out at `now` (their CANCELs go out with the next poll); returns how many.
    std::size_t expire(core::time_point now);
    // Appends to `out` the actions to take at `now`: pending CANCELs, then new REQUESTs. Calls expire(now).
    void poll(core::time_point now, std::vector<action>& out);
    // Same, into a fresh vector.
    std::vector<action> poll(core::time_point now);
    // When poll() next has time-driven work: the earliest request timeout or penalty expiry, if any.
    // Poll also after every input (bitmap, have, chunk, reject, peer change, window move).
    std::optional<core::time_point> next_timeout() const noexcept;

    // ---- queries
    std::size_t in_flight(const core::peer_id& peer) const noexcept { return pipeline_.in_flight(peer); }
    std::size_t in_flight_total() const noexcept { return pipeline_.in_flight_total(); }
    bool is_in_flight(core::chunk_id id) const noexcept { return pipeline_.is_in_flight(id); }
    // Neighbours holding `id` (0 outside the window).
    std::size_t holders(core::chunk_id id) const noexcept { return availability_.holders(id); }
    const scheduler_stats& stats() const noexcept { return stats_; }
    const availability& holdings() const noexcept { return availability_; }
    const request_pipeline& requests() const noexcept { return pipeline_; }

private:
    // A neighbour with a free slot, as seen during one poll.
    struct candidate_peer {
        const core::peer_id* peer;
        const request_pipeline::peer_state* state;
        const core::buffer_map* map;
        std::size_t in_flight;
        core::duration chunk_time;
        std::uint64_t hash;
    };
    // A chunk waiting in the rarest-first queue.
    struct candidate_chunk {
        std::uint64_t holders;
        std::uint64_t key;  // seeded tie-breaker
        core::chunk_id id;
    };

    void cancel_everywhere(core::chunk_id id);
    void collect_free_peers();
    // Index into free_ of the best holder for `id`, or free_.size(); `skip` (if any) is excluded and
    // only holders expected to complete before `before` (if given) qualify.
    std::size_t best_holder(core::chunk_id id, core::time_point now, const core::peer_id* skip,
                            std::optional<core::time_point> before) const;
    void send(std::size_t holder, core::chunk_id id, core::time_point now, std::vector<action>& out);
    void consider_endgame(core::chunk_id id, core::time_point now, std::vector<action>& out);

    scheduler_config config_;
    availability availability_;
    request_pipeline pipeline_;
    core::buffer_map have_;
    std::optional<deadline_model> deadlines_;
    core::chunk_id missed_from_;  // ids below this were already counted as missed (or left the window)
    scheduler_stats stats_;
    std::vector<action> pending_;              // CANCELs waiting for the next poll
    std::map<core::chunk_id, core::time_point> deferred_;  // see defer()
    std::vector<request_ref> scratch_refs_;    // reused buffers, to keep poll allocation-free
    std::vector<candidate_peer> free_;
    std::vector<candidate_chunk> queue_;
};

}  // namespace pixtream::swarm
