#include "pixtream/peer/chunk_store.hpp"

namespace pixtream::peer {

chunk_store::chunk_store(std::size_t capacity) : map_(capacity) { ring_.resize(map_.capacity()); }

bool chunk_store::insert(wire::chunk_ptr c) {
    if (!c) return false;
    if (c->is_header()) {
        bool known = false;
        for (const auto& h : headers_) known = known || h->id == c->id;
        if (!known) {
            headers_.push_back(c);
            if (headers_.size() > pinned_headers) headers_.pop_front();
        }
    }
    // The first chunk lands at the end of the window, so that older chunks fetched later still fit.
    if (map_.empty() && !map_.in_window(c->id)) map_.advance_to_fit(c->id);
    if (c->id < map_.base() || map_.test(c->id)) return false;
    if (!map_.in_window(c->id)) {
        const auto old_base = map_.base();
        map_.advance_to_fit(c->id);
        const auto dropped = static_cast<std::uint64_t>(distance(old_base, map_.base()));
        if (dropped >= ring_.size()) {
            for (auto& slot : ring_) slot.reset();
            bytes_ = 0;
        } else {
            for (auto id = old_base; id < map_.base(); ++id) {
                auto& slot = ring_[id.value() % ring_.size()];
                if (slot && slot->id == id) {
                    bytes_ -= slot->payload.size();
                    slot.reset();
                }
            }
        }
    }
    auto& slot = ring_[c->id.value() % ring_.size()];
    if (slot) bytes_ -= slot->payload.size();
    bytes_ += c->payload.size();
    slot = std::move(c);
    map_.set(slot->id);
    return true;
}

wire::chunk_ptr chunk_store::get(core::chunk_id id) const {
    if (map_.test(id)) {
        const auto& slot = ring_[id.value() % ring_.size()];
        if (slot && slot->id == id) return slot;
    }
    for (const auto& h : headers_) {
        if (h->id == id) return h;
    }
    return nullptr;
}

std::optional<double> chunk_store::interval(std::size_t min_span, std::size_t max_span) const {
    const auto newest_id = newest();
    if (!newest_id || min_span == 0) return std::nullopt;
    const auto newest_chunk = get(*newest_id);
    const auto lowest = newest_id->value() >= max_span ? *newest_id - max_span : core::chunk_id{0};
    const auto from = lowest < map_.base() ? map_.base() : lowest;
    const auto oldest_id = map_.next_set(from);
    if (!oldest_id || !(*oldest_id < *newest_id)) return std::nullopt;
    const auto span = static_cast<std::uint64_t>(distance(*oldest_id, *newest_id));
    if (span < min_span) return std::nullopt;
    const auto oldest_chunk = get(*oldest_id);
    if (!newest_chunk || !oldest_chunk || newest_chunk->timestamp <= oldest_chunk->timestamp) return std::nullopt;
    return static_cast<double>(newest_chunk->timestamp - oldest_chunk->timestamp) / 1e6 / static_cast<double>(span);
}

}  // namespace pixtream::peer
