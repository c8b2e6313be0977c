#include "pixtream/swarm/availability.hpp"

#include <algorithm>

namespace pixtream::swarm {

availability::availability(std::size_t window, core::chunk_id base)
    : window_(core::buffer_map(window).capacity()), base_(base), counts_(window_, 0) {}

bool availability::add_peer(const core::peer_id& peer) {
    return peers_.try_emplace(peer, neighbour_capacity, base_).second;
}

core::buffer_map& availability::map_for(const core::peer_id& peer) {
    return peers_.try_emplace(peer, neighbour_capacity, base_).first->second;
}

void availability::remove_peer(const core::peer_id& peer) {
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    count(it->second, base_, end(), false);
    peers_.erase(it);
}

void availability::count(const core::buffer_map& map, core::chunk_id from, core::chunk_id to, bool add) noexcept {
    from = std::max(from, base_);
    to = std::min(to, end());
    for (auto id = map.next_set(from); id && *id < to; id = map.next_set(id->next())) {
        auto& c = counts_[slot(*id)];
        if (add) {
            ++c;
        } else if (c > 0) {
            --c;
        }
    }
}

void availability::on_bitmap(const core::peer_id& peer, const core::buffer_map& map) {
    auto& mine = map_for(peer);
    count(mine, base_, end(), false);
    // The incoming map spans at most neighbour_capacity ids from its base, so starting at or above
    // its base everything it holds fits.
    mine = core::buffer_map(neighbour_capacity, std::max(map.base(), base_));
    for (auto id = map.next_set(mine.base()); id; id = map.next_set(id->next())) mine.set(*id);
    count(mine, base_, end(), true);
}

void availability::on_have(const core::peer_id& peer, core::chunk_id id) {
    auto& mine = map_for(peer);
    if (id < base_ || mine.test(id)) return;
    if (id < mine.base()) {
        // Older than the neighbour's last buffer map: move its map back if what it holds still fits.
        const auto last = mine.last_set();
        if (last && static_cast<std::size_t>(distance(id, *last)) >= neighbour_capacity) return;
        core::buffer_map moved(neighbour_capacity, id);
        mine.for_each_set([&](core::chunk_id held) { moved.set(held); });
        mine = std::move(moved);
    } else if (id >= mine.end()) {
        const auto new_base = id - (neighbour_capacity - 1);
        count(mine, mine.base(), new_base, false);
        mine.advance_to(new_base);
    }
    mine.set(id);
    if (in_window(id)) ++counts_[slot(id)];
}

void availability::advance_to(core::chunk_id new_base) {
    if (new_base <= base_) return;
    const auto old_base = base_;
    const auto old_end = end();
    base_ = new_base;
    for (auto& [peer, map] : peers_) map.advance_to(new_base);
    core::chunk_id fresh = old_end;
    if (new_base >= old_end) {
        std::fill(counts_.begin(), counts_.end(), 0);
        fresh = new_base;
    } else {
        // The slots of the dropped ids [old_base, new_base) are the slots of the new ids [old_end, end()).
        for (auto id = old_base; id < new_base; ++id) counts_[slot(id)] = 0;
    }
    for (const auto& [peer, map] : peers_) count(map, fresh, end(), true);
}

std::size_t availability::holders(core::chunk_id id) const noexcept {
    return in_window(id) ? counts_[slot(id)] : 0;
}

bool availability::holds(const core::peer_id& peer, core::chunk_id id) const noexcept {
    const auto* map = map_of(peer);
    return map != nullptr && map->test(id);
}

const core::buffer_map* availability::map_of(const core::peer_id& peer) const noexcept {
    const auto it = peers_.find(peer);
    return it == peers_.end() ? nullptr : &it->second;
}

}  // namespace pixtream::swarm
