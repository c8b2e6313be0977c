#pragma once
// The chunks a node holds: a sliding window ending at the newest chunk, plus header chunks pinned
// beyond it (a player joining at any time needs the container headers, however old). Pure.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/wire/messages.hpp"

#include <deque>
#include <optional>
#include <vector>

namespace pixtream::peer {

class chunk_store {
public:
    static constexpr std::size_t pinned_headers = 4;

    // Holds up to `capacity` consecutive ids (rounded like core::buffer_map).
    explicit chunk_store(std::size_t capacity = 256);

    // Stores c unless it is older than the window or already held. A chunk beyond the window slides
    // it forward, dropping the oldest chunks. Header chunks are also pinned. Returns whether stored.
    bool insert(wire::chunk_ptr c);
    // The chunk with this id, from the window or the pinned headers; null if not held.
    wire::chunk_ptr get(core::chunk_id id) const;
    bool has(core::chunk_id id) const { return get(id) != nullptr; }

    const core::buffer_map& map() const noexcept { return map_; }
    std::optional<core::chunk_id> newest() const noexcept { return map_.last_set(); }
    std::size_t bytes() const noexcept { return bytes_; }

    // Seconds between chunks by the source's own timestamps, measured over a span of ids: from the
    // newest held chunk back to the oldest one held at most `max_span` ids before it. Nullopt unless
    // that span is at least `min_span` ids (two neighbouring chunks say little: a chunk cut early
    // before a keyframe, or two cut together after a stall, would make the interval look tiny) or
    // the timestamps do not increase.
    std::optional<double> interval(std::size_t min_span = 4, std::size_t max_span = 32) const;

private:
    std::vector<wire::chunk_ptr> ring_;
    core::buffer_map map_;
    std::deque<wire::chunk_ptr> headers_;
    std::size_t bytes_ = 0;
};

}  // namespace pixtream::peer
