#pragma once
// When each chunk goes to the players. Pure: time is passed in.
//
// Playback starts at the first random-access chunk at or after `start`, once the header chunk it
// refers to (if any) is held. Chunk c is due at the steady time matching wall time c.timestamp +
// lag: every chunk leaves with the same lag behind the source. If the first chunk played comes more
// than the late tolerance after its due time, the lag grows by that lateness (a joiner fetches its
// first seconds all at once: the chunks after the first must not be skipped because it came late).
// A chunk still missing when a later
// chunk falls due is skipped. So is a missing chunk when no later one is held yet but the swarm has
// later ones (set_live_edge) and, by the chunk interval (set_interval) counted from the last chunk
// played, the chunk after it has been due for one more lag (the slack covers a source that paused:
// its next chunk comes later than the interval says). The output so never waits for a chunk that
// cannot arrive in time, and never stalls while the stream goes on; a pause of the source itself (no
// later chunk anywhere) skips nothing.
// A chunk played more than the late tolerance after its due time came late (a stall of the source or
// of the swarm, whether or not anything later was announced) and counts as late. Every chunk that
// fell due while playing counts: continuity = chunks played on time / (played + skipped).
#include "pixtream/core/time.hpp"
#include "pixtream/peer/chunk_store.hpp"

#include <optional>
#include <vector>

namespace pixtream::peer {

struct playout_event {
    enum class kind { play, skip, end };
    kind what;
    core::chunk_id id;
    wire::chunk_ptr chunk;  // for play and end (the end-of-stream chunk itself is played first)
};

struct playout_stats {
    std::uint64_t played = 0;       // every chunk played, on time or late
    std::uint64_t late = 0;         // of those, played more than the late tolerance after their due time
    std::uint64_t skipped = 0;      // missed their deadline after playback started
    std::uint64_t passed_over = 0;  // before the first random-access chunk (not counted against continuity)
    // On-time plays / (plays + skips).
    double continuity() const noexcept {
        return played + skipped == 0 ? 1.0
                                     : static_cast<double>(played - late) / static_cast<double>(played + skipped);
    }
};

class playout {
public:
    // How long after its due time a chunk may be played and still count as on time (the wake-up of
    // whoever polls is never exact).
    static constexpr core::duration default_late_tolerance = std::chrono::milliseconds(200);

    // Begin with chunk `start`. A chunk with timestamp ts is due at steady time
    // now + (ts + lag - now_wall).
    void start(core::chunk_id start, core::duration lag, core::wall_micros now_wall, core::time_point now);
    bool started() const noexcept { return start_.has_value(); }
    bool playing() const noexcept { return playing_; }
    bool ended() const noexcept { return ended_; }
    // Next chunk id to play.
    core::chunk_id next() const noexcept { return next_; }

    // Appends what is due at `now` to `out`.
    void poll(core::time_point now, const chunk_store& store, std::vector<playout_event>& out);
    // When poll has work next: the due time of the next held chunk; nullopt if none is held
    // (then the next chunk's arrival is the wake-up).
    std::optional<core::time_point> next_deadline(const chunk_store& store) const;

    core::time_point due(const wire::chunk& c) const noexcept;
    // The estimated time between chunks (zero: unknown, no time-based skipping).
    void set_interval(core::duration interval) noexcept { interval_ = interval; }
    // The newest chunk id some neighbour holds: chunks below it exist.
    void set_live_edge(core::chunk_id edge) noexcept;
    void set_late_tolerance(core::duration d) noexcept { late_tolerance_ = d; }
    core::duration late_tolerance() const noexcept { return late_tolerance_; }
    core::duration lag() const noexcept { return lag_; }
    const playout_stats& stats() const noexcept { return stats_; }

private:
    // The next held chunk after next_, if any.
    wire::chunk_ptr next_held(const chunk_store& store) const;
    // When the missing next_ is given up on by the interval estimate, if it can be.
    std::optional<core::time_point> estimated_give_up() const noexcept;
    // When the missing next_ is given up on: a later held chunk's due time or the estimate.
    std::optional<core::time_point> give_up_at(const chunk_store& store) const;

    std::optional<core::chunk_id> start_;
    core::chunk_id next_;
    core::duration lag_{};
    core::time_point steady_anchor_;
    core::wall_micros wall_anchor_ = 0;
    core::duration interval_{};
    core::duration late_tolerance_ = default_late_tolerance;
    std::optional<core::chunk_id> live_edge_;
    core::chunk_id last_id_;         // the last chunk played, and its timestamp
    core::wall_micros last_ts_ = 0;
    bool playing_ = false;
    bool ended_ = false;
    playout_stats stats_;
};

}  // namespace pixtream::peer
