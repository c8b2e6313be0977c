#pragma once
// When each chunk is due at the player: a straight line through one known (chunk, deadline) point.
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"

#include <cstdint>

namespace pixtream::swarm {

// deadline(id) = anchor_deadline + (id - anchor) * chunk_interval. `chunk_interval` must be positive.
struct deadline_model {
    core::chunk_id anchor;
    core::time_point anchor_deadline;
    core::duration chunk_interval;

    // Playback deadline of `id` (ids before the anchor get earlier deadlines).
    core::time_point deadline(core::chunk_id id) const noexcept {
        return anchor_deadline + chunk_interval * distance(anchor, id);
    }
};

}  // namespace pixtream::swarm
