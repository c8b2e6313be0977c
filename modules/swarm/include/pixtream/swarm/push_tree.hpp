#pragma once
// Substream push trees (pure: time is passed in, no sockets, no randomness).
//
// Pulling a fresh chunk costs every hop a HAVE, a REQUEST and the data: three one-way delays, and the
// first holder of a chunk is asked by all its neighbours at once and serves them one after another.
// So the stream is also split into `substreams` (substream i: the chunks whose id % substreams == i)
// and each viewer asks one neighbour per substream, its parent, to push it every chunk of that
// substream as soon as it holds one (SUBSCRIBE, answered by GRANT). Chunks then cross a hop in one
// one-way delay, each node sends a chunk only to the few children it granted, and pulling is left
// to repair what the push trees did not bring in time.
//
// Child side: the parent of a substream is the neighbour that makes its chunks available first.
// For every chunk it hears of, the tree records when each neighbour made it available to us (a
// pushed or answered CHUNK: its arrival; a HAVE: its arrival plus the `fetch_cost` a request would
// still take, about a round trip and the chunk's transfer) and, `observe` after the first, scores
// each neighbour by how much later than the best it was (smoothed). A neighbour we told first (our
// HAVE reached it before it had the chunk) sends no HAVE: its time is unknown, not counted; but a
// granted parent that did not push is counted as `observe` late. The source, which pushes fresh
// chunks and announces none, is always the first choice while it grants. A parent is changed only
// for one at least `switch_margin` better, and not within `settle` of the last change, and the old
// one keeps pushing until the new one granted (a refusal leaves things as they were); a neighbour
// that refused (or revoked) a substream is not asked for it again within `refused_backoff`; a
// neighbour we push a substream to is never asked for it (no two-node loops; longer loops starve
// their members of pushes, which makes their parents late and so replaced).
//
// Parent side: a node grants at most `capacity` substream subscriptions over all its children (the
// caller sets it from the measured uplink, as the substreams it can push at the stream's rate), at
// most `max_per_child` to one child (the source grants one each, so that the substreams' trees have
// different roots and no single viewer's uplink carries all of them) and at most `max_per_substream`
// children per substream (the source: as many as the copies of a fresh chunk it sends), never a substream to the
// neighbour that is its own parent for it. When the capacity shrinks, the newest grants are revoked.
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace pixtream::swarm {

struct push_tree_config {
    unsigned substreams = 4;                                  // 1 .. 32
    core::duration observe = core::seconds(1);
    double smoothing = 0.3;                                   // weight of a new observation
    core::duration switch_margin = core::milliseconds(100);
    core::duration settle = core::seconds(3);
    core::duration refused_backoff = core::seconds(5);
    core::duration answer_timeout = core::seconds(5);          // a SUBSCRIBE not answered this long: refused
    std::size_t max_per_child = 32;
    std::size_t max_per_substream = 0;                         // children of one substream at most; 0: no limit
    std::size_t max_observed = 512;                            // chunks under observation at once
};

enum class tree_action_kind : std::uint8_t { subscribe, grant };

// Send SUBSCRIBE (or GRANT) with this mask to `peer`.
struct tree_action {
    tree_action_kind kind;
    core::peer_id peer;
    std::uint32_t mask;
    friend bool operator==(const tree_action&, const tree_action&) = default;
};

struct push_tree_stats {
    std::uint64_t subscribes = 0;      // SUBSCRIBE messages decided
    std::uint64_t parent_changes = 0;  // a granted substream moved to another parent
    std::uint64_t refusals = 0;        // substreams refused or revoked by a parent
    std::uint64_t revocations = 0;     // substreams we took back from children
};

class push_tree {
public:
    explicit push_tree(push_tree_config cfg = {});

    const push_tree_config& config() const noexcept { return cfg_; }
    unsigned substreams() const noexcept { return cfg_.substreams; }
    unsigned substream_of(core::chunk_id id) const noexcept {
        return static_cast<unsigned>(id.value() % cfg_.substreams);
    }
    std::uint32_t all_substreams() const noexcept;

    // ---- neighbours
    void add_peer(const core::peer_id& peer, bool is_source);
    // Its substreams (as our parent) are chosen anew at the next poll; its grants (as our child) are freed.
    void remove_peer(const core::peer_id& peer);

    // ---- as a child
    // At `now` we learned that `peer` holds `id`; `fetch_cost` is what getting it from there would
    // still take (zero for a CHUNK that arrived). Only the first time per neighbour and chunk counts.
    // Returns whether this is the first time we heard of `id` at all.
    bool on_heard(const core::peer_id& peer, core::chunk_id id, core::duration fetch_cost, core::time_point now);
    // We announced `id` to `peer` (it did not know we hold it).
    void on_told(const core::peer_id& peer, core::chunk_id id);
    // GRANT from `peer`.
    void on_grant(const core::peer_id& peer, std::uint32_t mask, core::time_point now);
    // The neighbour that pushes substream `s` to us, if one granted it.
    std::optional<core::peer_id> parent(unsigned s) const;
    // The chunk's substream is pushed to us (so a HAVE from another neighbour can wait a little).
    bool pushed_to_us(core::chunk_id id) const;
    // Smoothed lateness of `peer` in substream `s`, if observed.
    std::optional<core::duration> score(const core::peer_id& peer, unsigned s) const;

    // ---- as a parent
    void set_capacity(std::size_t slots) noexcept { capacity_ = slots; }
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t granted_total() const noexcept { return grants_.size(); }
    // SUBSCRIBE from `peer`: records and returns the substreams granted (the caller answers GRANT).
    std::uint32_t on_subscribe(const core::peer_id& peer, std::uint32_t mask, core::time_point now);
    std::uint32_t granted_to(const core::peer_id& peer) const noexcept;
    bool is_child(const core::peer_id& peer, unsigned s) const noexcept { return (granted_to(peer) >> s) & 1U; }

    // ---- decisions
    // Finishes observations, picks parents, revokes grants over capacity: appends SUBSCRIBEs and GRANTs.
    void poll(core::time_point now, std::vector<tree_action>& out);

    const push_tree_stats& stats() const noexcept { return stats_; }

private:
    struct heard_at {
        core::peer_id peer;
        core::time_point at;  // available to us from then (arrival + fetch cost)
    };
    struct observation {
        core::time_point first;  // first heard of
        std::vector<heard_at> heard;
        std::vector<core::peer_id> told;
    };
    struct neighbour {
        bool is_source = false;
        std::vector<std::optional<core::duration>> score;      // per substream
        std::vector<core::time_point> refused_until;           // per substream
        std::uint32_t granted_to_it = 0;                       // we push these to it
        std::uint32_t asked_mask_sent = 0;                     // our last SUBSCRIBE to it
    };
    struct parent_state {
        std::optional<core::peer_id> peer;  // asked (pending or granted)
        bool granted = false;
        core::time_point asked_at{};
        core::time_point changed_at{};
        // A better neighbour asked while `peer` still pushes: it takes over once it grants.
        std::optional<core::peer_id> next;
        core::time_point next_asked_at{};
    };
    struct grant_entry {
        core::peer_id peer;
        unsigned substream;
    };

    void finish(const observation& o, core::chunk_id id);
    void choose(unsigned s, core::time_point now);
    std::uint32_t asked_mask(const core::peer_id& peer) const noexcept;
    void refuse(const core::peer_id& peer, unsigned s, core::time_point now);
    static void promote_next(parent_state& p);

    push_tree_config cfg_;
    std::unordered_map<core::peer_id, neighbour> peers_;
    std::map<core::chunk_id, observation> observed_;
    std::optional<core::chunk_id> finished_;  // chunks up to this one were observed (or dropped): not again
    std::vector<parent_state> parents_;
    std::vector<grant_entry> grants_;  // oldest first
    std::size_t capacity_ = 0;
    std::vector<core::peer_id> dirty_;  // neighbours whose SUBSCRIBE must be (re)sent
    push_tree_stats stats_;
};

}  // namespace pixtream::swarm
