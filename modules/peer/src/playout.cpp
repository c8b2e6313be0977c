#include "pixtream/peer/playout.hpp"

namespace pixtream::peer {

void playout::start(core::chunk_id start, core::duration lag, core::wall_micros now_wall, core::time_point now) {
    start_ = start;
    next_ = start;
    lag_ = lag;
    wall_anchor_ = now_wall;
    steady_anchor_ = now;
}

core::time_point playout::due(const wire::chunk& c) const noexcept {
    const auto offset = static_cast<std::int64_t>(c.timestamp) - static_cast<std::int64_t>(wall_anchor_);
    return steady_anchor_ + std::chrono::duration_cast<core::duration>(core::microseconds(offset)) + lag_;
}

void playout::set_live_edge(core::chunk_id edge) noexcept {
    if (!live_edge_ || edge > *live_edge_) live_edge_ = edge;
}

std::optional<core::time_point> playout::estimated_give_up() const noexcept {
    if (!playing_ || interval_ <= core::duration::zero() || !live_edge_ || !(next_ < *live_edge_)) return std::nullopt;
    // The chunk after next_ would be due at last_ts + (next_ + 1 - last_id) * interval + lag. That
    // estimate is early by however long the source paused since last_ts (a dropped input, say): one
    // more lag of slack keeps a chunk cut after a pause from being given up while it is on its way.
    const auto steps = distance(last_id_, next_) + 1;
    const auto offset = static_cast<std::int64_t>(last_ts_) - static_cast<std::int64_t>(wall_anchor_);
    return steady_anchor_ + std::chrono::duration_cast<core::duration>(core::microseconds(offset)) + lag_ +
           interval_ * steps + lag_;
}

wire::chunk_ptr playout::next_held(const chunk_store& store) const {
    const auto id = store.map().next_set(next_.next());
    return id ? store.get(*id) : nullptr;
}

void playout::poll(core::time_point now, const chunk_store& store, std::vector<playout_event>& out) {
    if (!start_ || ended_) return;
    // Chunks that slid out of the store's window can no longer be played.
    if (next_ < store.map().base()) {
        const auto gone = static_cast<std::uint64_t>(distance(next_, store.map().base()));
        if (playing_) {
            stats_.skipped += gone;
            out.push_back({playout_event::kind::skip, store.map().base() - 1, nullptr});
        } else {
            stats_.passed_over += gone;
        }
        next_ = store.map().base();
    }
    for (;;) {
        const auto c = store.get(next_);
        if (c && !playing_) {
            const bool header_ready = !c->has_header_ref() || store.has(c->header_ref);
            if (!c->random_access() || !header_ready) {
                // Not a place to start: pass over it once its time has come (or at once if not RA).
                if (c->random_access() && due(*c) > now) return;
                ++stats_.passed_over;
                next_ = next_.next();
                continue;
            }
            playing_ = true;
            // The first chunk sets the clock: one that came more than the late tolerance after its due
            // time moves every deadline by its lateness (the lag grows by it), rather than the chunks
            // after it, fetched at the same time, being skipped or late for it.
            if (const auto first_due = due(*c); now - first_due > late_tolerance_) lag_ += now - first_due;
        }
        if (c) {
            const auto due_at = due(*c);
            if (due_at > now) return;
            ++stats_.played;
            if (now - due_at > late_tolerance_) ++stats_.late;
            last_id_ = next_;
            last_ts_ = c->timestamp;
            out.push_back({playout_event::kind::play, next_, c});
            next_ = next_.next();
            if (c->end_of_stream()) {
                ended_ = true;
                out.push_back({playout_event::kind::end, c->id, c});
                return;
            }
            continue;
        }
        // next_ is missing: give up on it once a later held chunk is due.
        if (const auto t = give_up_at(store); !t || *t > now) return;
        if (playing_) {
            ++stats_.skipped;
            out.push_back({playout_event::kind::skip, next_, nullptr});
        } else {
            ++stats_.passed_over;
        }
        next_ = next_.next();
    }
}

std::optional<core::time_point> playout::give_up_at(const chunk_store& store) const {
    auto t = estimated_give_up();
    if (const auto later = next_held(store)) t = t ? std::min(*t, due(*later)) : due(*later);
    return t;
}

std::optional<core::time_point> playout::next_deadline(const chunk_store& store) const {
    if (!start_ || ended_) return std::nullopt;
    if (const auto c = store.get(next_)) return due(*c);
    return give_up_at(store);
}

}  // namespace pixtream::peer
