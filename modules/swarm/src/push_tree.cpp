#include "pixtream/swarm/push_tree.hpp"

#include <algorithm>
#include <stdexcept>

namespace pixtream::swarm {

push_tree::push_tree(push_tree_config cfg) : cfg_(cfg) {
    if (cfg_.substreams < 1 || cfg_.substreams > 32) throw std::invalid_argument("swarm::push_tree: 1 to 32 substreams");
    cfg_.smoothing = std::clamp(cfg_.smoothing, 0.01, 1.0);
    cfg_.max_per_child = std::max<std::size_t>(cfg_.max_per_child, 1);
    parents_.resize(cfg_.substreams);
}

std::uint32_t push_tree::all_substreams() const noexcept {
    return cfg_.substreams >= 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << cfg_.substreams) - 1;
}

void push_tree::add_peer(const core::peer_id& peer, bool is_source) {
    auto [it, fresh] = peers_.try_emplace(peer);
    if (!fresh) return;
    it->second.is_source = is_source;
    it->second.score.resize(cfg_.substreams);
    it->second.refused_until.resize(cfg_.substreams);
}

// The parent is gone (left, refused): the candidate, if any, is now asked in its own right.
void push_tree::promote_next(parent_state& p) {
    p.peer = p.next;
    p.asked_at = p.next_asked_at;
    p.granted = false;
    p.next.reset();
}

void push_tree::remove_peer(const core::peer_id& peer) {
    if (peers_.erase(peer) == 0) return;
    for (auto& p : parents_) {
        if (p.next == peer) p.next.reset();
        if (p.peer == peer) promote_next(p);
    }
    std::erase_if(grants_, [&](const grant_entry& g) { return g.peer == peer; });
    std::erase(dirty_, peer);
}

bool push_tree::on_heard(const core::peer_id& peer, core::chunk_id id, core::duration fetch_cost, core::time_point now) {
    if (!peers_.contains(peer)) return false;
    auto it = observed_.find(id);
    bool first = false;
    if (it == observed_.end()) {
        if (finished_ && id <= *finished_) return false;  // observed already (or too old to be)
        if (observed_.size() >= cfg_.max_observed) {
            if (id < observed_.begin()->first) return false;
            finished_ = std::max(finished_.value_or(observed_.begin()->first), observed_.begin()->first);
            observed_.erase(observed_.begin());
        }
        it = observed_.emplace(id, observation{now, {}, {}}).first;
        first = true;
    }
    auto& o = it->second;
    if (std::any_of(o.heard.begin(), o.heard.end(), [&](const heard_at& h) { return h.peer == peer; })) return first;
    o.heard.push_back({peer, now + std::max(fetch_cost, core::duration::zero())});
    return first;
}

void push_tree::on_told(const core::peer_id& peer, core::chunk_id id) {
    auto it = observed_.find(id);
    if (it == observed_.end()) return;  // we hold it and heard of it from nobody: nothing to compare
    auto& o = it->second;
    if (std::any_of(o.heard.begin(), o.heard.end(), [&](const heard_at& h) { return h.peer == peer; })) return;
    if (std::find(o.told.begin(), o.told.end(), peer) == o.told.end()) o.told.push_back(peer);
}

void push_tree::finish(const observation& o, core::chunk_id id) {
    if (o.heard.empty()) return;
    const unsigned s = substream_of(id);
    auto best = o.heard.front().at;
    for (const auto& h : o.heard) best = std::min(best, h.at);
    for (auto& entry : peers_) {
        const auto& peer = entry.first;  // (a structured binding cannot be captured before C++20 in clang 14)
        auto& n = entry.second;
        std::optional<core::duration> late;
        const auto h = std::find_if(o.heard.begin(), o.heard.end(), [&](const heard_at& x) { return x.peer == peer; });
        const bool is_parent = parents_[s].granted && parents_[s].peer == peer;  // (a candidate is not yet)
        if (h != o.heard.end()) {
            late = std::min(h->at - best, cfg_.observe);
        } else if (is_parent) {
            late = cfg_.observe;  // it was to push this chunk and did not
        } else if (std::find(o.told.begin(), o.told.end(), peer) == o.told.end() && !n.score[s]) {
            continue;  // never heard of it, never observed: nothing known yet
        } else if (std::find(o.told.begin(), o.told.end(), peer) == o.told.end()) {
            late = cfg_.observe;  // not told and silent: it did not have it
        } else {
            continue;  // we told it first: its time is unknown
        }
        auto& sc = n.score[s];
        if (!sc) {
            sc = *late;
        } else {
            const double v = static_cast<double>(sc->count()) +
                             cfg_.smoothing * static_cast<double>(late->count() - sc->count());
            sc = core::duration(static_cast<core::duration::rep>(v));
        }
    }
}

std::optional<core::duration> push_tree::score(const core::peer_id& peer, unsigned s) const {
    const auto it = peers_.find(peer);
    if (it == peers_.end() || s >= cfg_.substreams) return std::nullopt;
    return it->second.score[s];
}

std::uint32_t push_tree::asked_mask(const core::peer_id& peer) const noexcept {
    std::uint32_t m = 0;
    for (unsigned s = 0; s < cfg_.substreams; ++s) {
        if (parents_[s].peer == peer || parents_[s].next == peer) m |= std::uint32_t{1} << s;
    }
    return m;
}

void push_tree::refuse(const core::peer_id& peer, unsigned s, core::time_point now) {
    if (auto it = peers_.find(peer); it != peers_.end()) it->second.refused_until[s] = now + cfg_.refused_backoff;
    auto& p = parents_[s];
    if (p.next == peer) {
        p.next.reset();  // the parent we have keeps pushing
    } else if (p.peer == peer) {
        promote_next(p);
    }
    ++stats_.refusals;
}

void push_tree::on_grant(const core::peer_id& peer, std::uint32_t mask, core::time_point now) {
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    for (unsigned s = 0; s < cfg_.substreams; ++s) {
        auto& p = parents_[s];
        const bool bit = (mask >> s) & 1U;
        if (p.next == peer) {
            if (!bit) {
                refuse(peer, s, now);
                continue;
            }
            // The better neighbour takes over; the old parent is told to stop.
            if (p.peer) dirty_.push_back(*p.peer);
            p.peer = peer;
            p.granted = true;
            p.next.reset();
            p.changed_at = now;
            ++stats_.parent_changes;
        } else if (p.peer == peer) {
            if (bit && !p.granted) {
                p.granted = true;
                p.changed_at = now;
            } else if (!bit) {
                refuse(peer, s, now);
            }
        }
    }
    // It pushes something we did not ask it for (an answer to an older SUBSCRIBE): say again what we want.
    if ((mask & ~asked_mask(peer)) != 0) dirty_.push_back(peer);
}

std::optional<core::peer_id> push_tree::parent(unsigned s) const {
    if (s >= cfg_.substreams || !parents_[s].granted) return std::nullopt;
    return parents_[s].peer;
}

bool push_tree::pushed_to_us(core::chunk_id id) const { return parents_[substream_of(id)].granted; }

std::uint32_t push_tree::granted_to(const core::peer_id& peer) const noexcept {
    const auto it = peers_.find(peer);
    return it == peers_.end() ? 0 : it->second.granted_to_it;
}

std::uint32_t push_tree::on_subscribe(const core::peer_id& peer, std::uint32_t mask, core::time_point now) {
    (void)now;
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return 0;
    auto& n = it->second;
    mask &= all_substreams();
    // Dropped substreams free their slots.
    const std::uint32_t kept = n.granted_to_it & mask;
    std::erase_if(grants_, [&](const grant_entry& g) { return g.peer == peer && !((kept >> g.substream) & 1U); });
    n.granted_to_it = kept;
    std::size_t mine = static_cast<std::size_t>(__builtin_popcount(kept));
    for (unsigned s = 0; s < cfg_.substreams; ++s) {
        if (!((mask >> s) & 1U) || ((kept >> s) & 1U)) continue;
        if (grants_.size() >= capacity_ || mine >= cfg_.max_per_child) break;
        if (parents_[s].peer == peer || parents_[s].next == peer) continue;  // it is our parent for s: no loop
        if (cfg_.max_per_substream > 0 &&
            static_cast<std::size_t>(std::count_if(grants_.begin(), grants_.end(), [s](const grant_entry& g) {
                return g.substream == s;
            })) >= cfg_.max_per_substream) {
            continue;
        }
        n.granted_to_it |= std::uint32_t{1} << s;
        grants_.push_back({peer, s});
        ++mine;
    }
    return n.granted_to_it;
}

void push_tree::choose(unsigned s, core::time_point now) {
    auto& p = parents_[s];
    if (p.next && now - p.next_asked_at > cfg_.answer_timeout) refuse(*p.next, s, now);  // no answer
    if (p.peer && !p.granted && now - p.asked_at > cfg_.answer_timeout) refuse(*p.peer, s, now);
    if (p.next || (p.peer && !p.granted)) return;  // waiting for an answer
    if (p.peer && now - p.changed_at < cfg_.settle) return;
    const core::peer_id* best = nullptr;
    const neighbour* best_n = nullptr;
    for (const auto& [id, n] : peers_) {
        if (n.refused_until[s] > now || ((n.granted_to_it >> s) & 1U)) continue;
        if (!n.is_source && !n.score[s]) continue;
        if (best_n != nullptr) {
            if (best_n->is_source && !n.is_source) continue;
            if (best_n->is_source == n.is_source &&
                (*n.score[s] > *best_n->score[s] || (*n.score[s] == *best_n->score[s] && !(id < *best)))) {
                continue;
            }
        }
        best = &id;
        best_n = &n;
    }
    if (best == nullptr || p.peer == *best) return;
    if (!p.peer) {
        p.peer = *best;
        p.granted = false;
        p.asked_at = now;
        dirty_.push_back(*best);
        return;
    }
    const auto cur = peers_.find(*p.peer);
    if (cur != peers_.end()) {
        if (cur->second.is_source) return;  // nothing beats the source
        const auto cur_score = cur->second.score[s];
        if (!best_n->is_source && cur_score && *best_n->score[s] + cfg_.switch_margin >= *cur_score) return;
    }
    p.next = *best;
    p.next_asked_at = now;
    dirty_.push_back(*best);
}

void push_tree::poll(core::time_point now, std::vector<tree_action>& out) {
    while (!observed_.empty() && now - observed_.begin()->second.first >= cfg_.observe) {
        finish(observed_.begin()->second, observed_.begin()->first);
        finished_ = std::max(finished_.value_or(observed_.begin()->first), observed_.begin()->first);
        observed_.erase(observed_.begin());
    }
    // Observations finish in id order; a younger one under a slow older one waits for it (bounded).
    for (unsigned s = 0; s < cfg_.substreams; ++s) choose(s, now);
    // Over capacity: the newest grants go first.
    std::vector<core::peer_id> revoked;
    while (grants_.size() > capacity_) {
        const auto g = grants_.back();
        grants_.pop_back();
        auto& n = peers_[g.peer];
        n.granted_to_it &= ~(std::uint32_t{1} << g.substream);
        ++stats_.revocations;
        if (std::find(revoked.begin(), revoked.end(), g.peer) == revoked.end()) revoked.push_back(g.peer);
    }
    for (const auto& peer : revoked) out.push_back({tree_action_kind::grant, peer, granted_to(peer)});
    std::sort(dirty_.begin(), dirty_.end());
    dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
    for (const auto& peer : dirty_) {
        const auto it = peers_.find(peer);
        if (it == peers_.end()) continue;
        const auto m = asked_mask(peer);
        it->second.asked_mask_sent = m;
        out.push_back({tree_action_kind::subscribe, peer, m});
        ++stats_.subscribes;
    }
    dirty_.clear();
}

}  // namespace pixtream::swarm
