#include "pixtream/tracker/registry.hpp"

#include <algorithm>
#include <unordered_set>

namespace pixtream::tracker {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pixtream.tracker"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::unknown_channel: return "unknown channel";
        case errc::channel_full: return "channel is full";
        case errc::too_many_channels: return "tracker holds too many channels";
        }
        return "unknown tracker error";
    }
};

}  // namespace

const std::error_category& tracker_category() noexcept {
    static const category instance;
    return instance;
}

registry::registry(registry_config cfg) : cfg_(cfg), rng_(cfg.seed) {}

std::optional<announce_result> registry::announce(const announce_params& p, const std::string& ip,
                                                  core::time_point now, std::error_code& ec) {
    ec.clear();
    ++stats_.announces;
    auto it = channels_.find(p.channel);
    if (it == channels_.end()) {
        if (p.ev == event::stopped) return announce_result{cfg_.interval, {}};  // nothing to remove
        if (!p.is_source) ec = errc::unknown_channel;
        else if (channels_.size() >= cfg_.max_channels) ec = errc::too_many_channels;
        if (ec) {
            ++stats_.rejected;
            return std::nullopt;
        }
        it = channels_.emplace(p.channel, channel{}).first;
    }
    channel& ch = it->second;
    ++ch.announces;
    if (p.is_source && p.name) ch.name = *p.name;

    auto found = ch.at.find(p.peer);
    if (p.ev == event::stopped) {
        ++stats_.stopped;
        if (found != ch.at.end()) remove_peer(ch, found->second);
        if (ch.peers.empty()) channels_.erase(it);
        return announce_result{cfg_.interval, {}};
    }
    if (p.ev == event::started) ++stats_.started;

    std::size_t index = 0;
    if (found == ch.at.end()) {
        if (ch.peers.size() >= cfg_.max_peers_per_channel) {
            ++stats_.rejected;
            ec = errc::channel_full;
            return std::nullopt;
        }
        index = ch.peers.size();
        ch.peers.push_back(peer_entry{peer_endpoint{p.peer, ip, p.port}, now, p.is_source});
        ch.at.emplace(p.peer, index);
    } else {
        index = found->second;
        auto& e = ch.peers[index];
        e.ep.ip = ip;
        e.ep.port = p.port;
        e.last_seen = now;
        e.is_source = e.is_source || p.is_source;
    }
    return announce_result{cfg_.interval, sample(ch, index, std::min(p.numwant, cfg_.max_numwant))};
}

void registry::remove_peer(channel& ch, std::size_t index) {
    ch.at.erase(ch.peers[index].ep.id);
    if (index + 1 != ch.peers.size()) {
        ch.peers[index] = std::move(ch.peers.back());
        ch.at[ch.peers[index].ep.id] = index;
    }
    ch.peers.pop_back();
}

// k distinct peers other than `exclude`, uniformly at random (Floyd's sampling, O(k)).
std::vector<peer_endpoint> registry::sample(const channel& ch, std::optional<std::size_t> exclude, std::size_t k) {
    const std::size_t n = ch.peers.size() - (exclude ? 1 : 0);
    auto real = [&](std::size_t i) { return (exclude && i >= *exclude) ? i + 1 : i; };
    std::vector<peer_endpoint> out;
    if (k >= n) {
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) out.push_back(ch.peers[real(i)].ep);
        std::shuffle(out.begin(), out.end(), rng_);
        return out;
    }
    std::unordered_set<std::size_t> picked;
    picked.reserve(k * 2);
    out.reserve(k);
    for (std::size_t j = n - k; j < n; ++j) {
        const std::size_t t = std::uniform_int_distribution<std::size_t>(0, j)(rng_);
        const std::size_t choice = picked.insert(t).second ? t : (picked.insert(j), j);
        out.push_back(ch.peers[real(choice)].ep);
    }
    std::shuffle(out.begin(), out.end(), rng_);
    return out;
}

void registry::expire(core::time_point now) {
    const auto timeout = cfg_.peer_timeout();
    for (auto it = channels_.begin(); it != channels_.end();) {
        auto& ch = it->second;
        for (std::size_t i = ch.peers.size(); i-- > 0;) {
            if (now - ch.peers[i].last_seen > timeout) {
                remove_peer(ch, i);
                ++stats_.expired;
            }
        }
        it = ch.peers.empty() ? channels_.erase(it) : std::next(it);
    }
}

channel_info registry::info_of(const core::channel_key& key, const channel& ch) {
    channel_info info{key, ch.name, ch.peers.size(), false, ch.announces};
    info.has_source = std::any_of(ch.peers.begin(), ch.peers.end(), [](const peer_entry& e) { return e.is_source; });
    return info;
}

std::vector<channel_info> registry::channels() const {
    std::vector<channel_info> out;
    out.reserve(channels_.size());
    for (const auto& [key, ch] : channels_) out.push_back(info_of(key, ch));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name || (a.name == b.name && a.key < b.key); });
    return out;
}

std::optional<channel_info> registry::find_channel(const core::channel_key& key) const {
    const auto it = channels_.find(key);
    if (it == channels_.end()) return std::nullopt;
    return info_of(key, it->second);
}

registry_stats registry::stats() const noexcept {
    auto s = stats_;
    s.channels = channels_.size();
    s.peers = 0;
    for (const auto& [key, ch] : channels_) s.peers += ch.peers.size();
    return s;
}

}  // namespace pixtream::tracker
