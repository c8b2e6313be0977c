#pragma once
// Who holds what: one buffer map per neighbour plus, over our own window, the number of neighbours
// holding each chunk (so rarest-first costs O(1) per chunk). Pure: no I/O, no clock.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/core/ids.hpp"

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pixtream::swarm {

// Tracks the neighbours' buffer maps and the holder count of every chunk in [base(), end()).
// A neighbour's map always starts at or above our base (what lies below is of no use to us) and spans
// `neighbour_capacity` ids, so announcements ahead of our window are remembered and counted once our
// window reaches them. Unknown peers are added by on_bitmap/on_have; other calls ignore them.
class availability {
public:
    // Span of every neighbour's map, in chunks (the protocol's largest window).
    static constexpr std::size_t neighbour_capacity = core::buffer_map::max_capacity;

    // `window` is rounded like core::buffer_map's capacity (multiple of 64 in [64, 4096]).
    explicit availability(std::size_t window = 512, core::chunk_id base = core::chunk_id{0});

    core::chunk_id base() const noexcept { return base_; }
    // One past the last id of our window.
    core::chunk_id end() const noexcept { return base_ + window_; }
    std::size_t window() const noexcept { return window_; }
    bool in_window(core::chunk_id id) const noexcept { return id >= base_ && id < end(); }

    // Registers a neighbour with an empty map; returns false if it was known already.
    bool add_peer(const core::peer_id& peer);
    // Forgets a neighbour and its contribution to the counts (no-op for an unknown peer).
    void remove_peer(const core::peer_id& peer);
    bool contains(const core::peer_id& peer) const noexcept { return peers_.contains(peer); }
    std::size_t peer_count() const noexcept { return peers_.size(); }

    // Replaces what we know of `peer` with the ids set in `map` (a BUFFER_MAP); ids below our base are dropped.
    void on_bitmap(const core::peer_id& peer, const core::buffer_map& map);
    // Records that `peer` now holds `id` (a HAVE). Ids below our base are ignored; an id past the end of the
    // neighbour's map slides that map forward, forgetting its oldest ids.
    void on_have(const core::peer_id& peer, core::chunk_id id);

    // Slides our window to start at `new_base` (never back) and counts the ids that enter it.
    void advance_to(core::chunk_id new_base);

    // Number of neighbours holding `id`; 0 outside our window.
    std::size_t holders(core::chunk_id id) const noexcept;
    // Whether `peer` announced `id` (false for unknown peers and ids it no longer remembers).
    bool holds(const core::peer_id& peer, core::chunk_id id) const noexcept;
    // The neighbour's map, or nullptr for an unknown peer. Valid until that peer is removed.
    const core::buffer_map* map_of(const core::peer_id& peer) const noexcept;

private:
    std::size_t slot(core::chunk_id id) const noexcept { return static_cast<std::size_t>(id.value() % window_); }
    core::buffer_map& map_for(const core::peer_id& peer);
    // Adds (or removes) one to the count of every id `map` holds in [from, to) within our window.
    void count(const core::buffer_map& map, core::chunk_id from, core::chunk_id to, bool add) noexcept;

    std::size_t window_;
    core::chunk_id base_;
    std::vector<std::uint32_t> counts_;  // ring over our window, indexed by id % window_
    std::unordered_map<core::peer_id, core::buffer_map> peers_;
};

}  // namespace pixtream::swarm
