#pragma once
// The source's choice of the neighbour that gets a fresh chunk's one pushed copy (pure: time is
// passed in, no sockets, no randomness).
//
// The source sends a fresh chunk to one viewer (node_config::push_fanout) and the swarm spreads it
// from there. Picked in turn, every few chunks land on a viewer whose uplink is weak or busy, and
// such a chunk reaches the others a second or more late (on the WAN lab, chunks pushed to 600-800
// kbit/s uplinks were late at about six times as many players as those pushed to 1.6-2 Mbit/s ones).
// Nobody can tell the source its viewers' uplinks, but it sees how fast each one spreads what it
// was given: the viewers announce (HAVE) a fresh chunk to the source, which holds it but does not
// announce it. The time from the push until `spread_count` OTHER neighbours announced the chunk is
// the push's spread time; a push not spread within `timeout` counts as `timeout`. Each neighbour's
// spread times are smoothed into its score.
//
// A pick takes the candidate with the lowest cost = score x (1 + its pushes not spread yet), so
// that the best few take turns instead of the best one getting every chunk (which would make it
// the hot spot every neighbour requests from). A neighbour never measured costs the best score of
// the candidates (ties: the one picked longest ago, so newcomers are tried), and every
// `explore_every`-th pick goes to the candidate measured longest ago (one with no push under
// observation), so that scores follow neighbours whose load changed.
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace pixtream::swarm {

struct seed_picker_config {
    std::size_t spread_count = 2;                    // other neighbours' HAVEs that make a push spread
    core::duration timeout = core::seconds(2);       // a push not spread by then counts this long
    double smoothing = 0.3;                          // weight of a new spread time
    std::size_t explore_every = 20;                  // every n-th pick re-measures (0: never)
    std::size_t max_pending = 256;                   // pushes under observation at once
};

struct seed_picker_stats {
    std::uint64_t picks = 0;
    std::uint64_t explores = 0;   // picks that went to the neighbour measured longest ago
    std::uint64_t spread = 0;     // pushes whose spread was seen
    std::uint64_t timeouts = 0;   // pushes not spread within timeout
};

class seed_picker {
public:
    explicit seed_picker(seed_picker_config cfg = {});

    const seed_picker_config& config() const noexcept { return cfg_; }

    // The neighbour to push the next fresh chunk to, among `candidates` (none: nullopt). Expires
    // the observations older than timeout first.
    std::optional<core::peer_id> pick(std::span<const core::peer_id> candidates, core::time_point now);
    // `id` was pushed to `peer` at `now` (after a pick, or any other push worth measuring).
    void on_pushed(const core::peer_id& peer, core::chunk_id id, core::time_point now);
    // HAVE `id` from `from`.
    void on_have(const core::peer_id& from, core::chunk_id id, core::time_point now);
    // The neighbour is gone: its score and its observations go too.
    void forget(const core::peer_id& peer);

    // Smoothed spread time of `peer`, if measured.
    std::optional<core::duration> score(const core::peer_id& peer) const;
    std::size_t pending() const noexcept { return pending_.size(); }
    const seed_picker_stats& stats() const noexcept { return stats_; }

private:
    struct observation {
        core::chunk_id id;
        core::peer_id target;
        core::time_point pushed_at;
        std::size_t heard = 0;
    };
    struct neighbour {
        std::optional<core::duration> score;
        std::optional<core::time_point> measured_at;  // last spread time recorded
        std::optional<core::time_point> picked_at;
        std::size_t pending = 0;                      // observations open
    };

    void expire(core::time_point now);
    void record(const core::peer_id& peer, core::duration spread, core::time_point now);
    std::deque<observation>::iterator close(std::deque<observation>::iterator it);  // the one after

    seed_picker_config cfg_;
    std::unordered_map<core::peer_id, neighbour> peers_;
    std::deque<observation> pending_;  // oldest first
    std::size_t since_explore_ = 0;
    seed_picker_stats stats_;
};

}  // namespace pixtream::swarm
