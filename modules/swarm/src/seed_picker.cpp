#include "pixtream/swarm/seed_picker.hpp"

#include <algorithm>
#include <stdexcept>

namespace pixtream::swarm {

seed_picker::seed_picker(seed_picker_config cfg) : cfg_(cfg) {
    if (cfg_.spread_count == 0) throw std::invalid_argument("seed_picker: spread_count must be at least 1");
    if (cfg_.timeout <= core::duration::zero()) throw std::invalid_argument("seed_picker: timeout must be positive");
    if (!(cfg_.smoothing > 0 && cfg_.smoothing <= 1)) throw std::invalid_argument("seed_picker: smoothing must be in (0, 1]");
    if (cfg_.max_pending == 0) throw std::invalid_argument("seed_picker: max_pending must be at least 1");
}

std::optional<core::peer_id> seed_picker::pick(std::span<const core::peer_id> candidates, core::time_point now) {
    expire(now);
    if (candidates.empty()) return std::nullopt;
    ++stats_.picks;
    // Times are compared as optionals: never picked (or measured) is less than any time, so first.
    const neighbour none{};
    const auto state = [&](const core::peer_id& p) -> const neighbour& {
        const auto it = peers_.find(p);
        return it == peers_.end() ? none : it->second;
    };
    const core::peer_id* best = nullptr;
    if (cfg_.explore_every > 0 && ++since_explore_ >= cfg_.explore_every) {
        since_explore_ = 0;
        ++stats_.explores;
        for (const auto& c : candidates) {
            const auto& n = state(c);
            if (!best) {
                best = &c;
                continue;
            }
            // One whose push is still being measured is no news; then the stalest measurement.
            const auto& b = state(*best);
            const bool nb = n.pending > 0, bb = b.pending > 0;
            if (nb != bb) {
                if (!nb) best = &c;
            } else if (n.measured_at < b.measured_at || (n.measured_at == b.measured_at && n.picked_at < b.picked_at)) {
                best = &c;
            }
        }
    } else {
        std::optional<core::duration> prior;  // the best measured score: what a newcomer is assumed to do
        for (const auto& c : candidates) {
            if (const auto& s = state(c).score; s && (!prior || *s < *prior)) prior = s;
        }
        const auto cost = [&](const neighbour& n) {
            const auto s = n.score.value_or(prior.value_or(core::duration::zero()));
            return core::to_seconds(s) * static_cast<double>(1 + n.pending);
        };
        double best_cost = 0;
        for (const auto& c : candidates) {
            const auto& n = state(c);
            const double k = cost(n);
            if (!best || k < best_cost || (k == best_cost && n.picked_at < state(*best).picked_at)) {
                best = &c;
                best_cost = k;
            }
        }
    }
    peers_[*best].picked_at = now;
    return *best;
}

void seed_picker::on_pushed(const core::peer_id& peer, core::chunk_id id, core::time_point now) {
    expire(now);
    if (pending_.size() >= cfg_.max_pending) close(pending_.begin());  // dropped, not scored
    pending_.push_back({id, peer, now, 0});
    ++peers_[peer].pending;
}

void seed_picker::on_have(const core::peer_id& from, core::chunk_id id, core::time_point now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->id != id || it->target == from || ++it->heard < cfg_.spread_count) {
            ++it;
            continue;
        }
        ++stats_.spread;
        record(it->target, now - it->pushed_at, now);
        it = close(it);
    }
}

void seed_picker::forget(const core::peer_id& peer) {
    std::erase_if(pending_, [&](const observation& o) { return o.target == peer; });
    peers_.erase(peer);
}

std::optional<core::duration> seed_picker::score(const core::peer_id& peer) const {
    const auto it = peers_.find(peer);
    return it == peers_.end() ? std::nullopt : it->second.score;
}

void seed_picker::expire(core::time_point now) {
    while (!pending_.empty() && now - pending_.front().pushed_at >= cfg_.timeout) {
        ++stats_.timeouts;
        record(pending_.front().target, cfg_.timeout, now);
        close(pending_.begin());
    }
}

void seed_picker::record(const core::peer_id& peer, core::duration spread, core::time_point now) {
    auto& n = peers_[peer];
    if (n.score) {
        const double s = (1 - cfg_.smoothing) * core::to_seconds(*n.score) + cfg_.smoothing * core::to_seconds(spread);
        n.score = core::from_seconds(s);
    } else {
        n.score = spread;
    }
    n.measured_at = now;
}

std::deque<seed_picker::observation>::iterator seed_picker::close(std::deque<observation>::iterator it) {
    if (const auto p = peers_.find(it->target); p != peers_.end() && p->second.pending > 0) --p->second.pending;
    return pending_.erase(it);
}

}  // namespace pixtream::swarm
