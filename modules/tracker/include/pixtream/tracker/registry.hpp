#pragma once
// The tracker's state: channels keyed by the source's public key, the peers announced in each,
// random peer subsets and expiry of silent peers. Pure: time is passed in, randomness is seeded.
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace pixtream::tracker {

enum class errc {
    unknown_channel = 1,  // a viewer announced to a channel no source has created
    channel_full,         // the channel holds max_peers_per_channel peers
    too_many_channels,    // the tracker holds max_channels channels
};
const std::error_category& tracker_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), tracker_category()}; }

enum class event { none, started, stopped };

struct announce_params {
    core::channel_key channel;
    core::peer_id peer;
    std::uint16_t port = 0;
    event ev = event::none;
    std::size_t numwant = 50;
    bool is_source = false;           // the channel's source: may create the channel and name it
    std::optional<std::string> name;  // channel name, from the source
};

struct peer_endpoint {
    core::peer_id id;
    std::string ip;  // textual address as seen by the tracker
    std::uint16_t port = 0;
    friend bool operator==(const peer_endpoint&, const peer_endpoint&) = default;
};

struct announce_result {
    core::duration interval;
    std::vector<peer_endpoint> peers;
};

struct registry_config {
    core::duration interval = core::seconds(10);
    std::size_t max_channels = 1024;
    std::size_t max_peers_per_channel = 10000;
    std::size_t max_numwant = 200;
    std::uint64_t seed = 0;

    // A peer silent for longer than this is dropped: 2 * interval + 5 s (docs/architecture.md).
    core::duration peer_timeout() const noexcept { return 2 * interval + core::seconds(5); }
};

struct channel_info {
    core::channel_key key;
    std::string name;
    std::size_t peers = 0;
    bool has_source = false;
    std::uint64_t announces = 0;
};

struct registry_stats {
    std::uint64_t announces = 0;
    std::uint64_t started = 0;
    std::uint64_t stopped = 0;
    std::uint64_t rejected = 0;  // announces refused with a registry error
    std::uint64_t expired = 0;   // peers dropped for silence
    std::size_t channels = 0;
    std::size_t peers = 0;
};

class registry {
public:
    explicit registry(registry_config cfg);

    // Records the announce and returns up to numwant other peers of the channel, in random order.
    // A `stopped` event removes the peer and returns no peers.
    std::optional<announce_result> announce(const announce_params& p, const std::string& ip, core::time_point now,
                                            std::error_code& ec);

    // Drops peers silent for longer than peer_timeout(), and channels left with no peer.
    void expire(core::time_point now);

    std::vector<channel_info> channels() const;
    std::optional<channel_info> find_channel(const core::channel_key& key) const;
    registry_stats stats() const noexcept;
    const registry_config& config() const noexcept { return cfg_; }

private:
    struct peer_entry {
        peer_endpoint ep;
        core::time_point last_seen;
        bool is_source = false;
    };
    struct channel {
        std::string name;
        std::vector<peer_entry> peers;                      // dense, for sampling
        std::unordered_map<core::peer_id, std::size_t> at;  // peer id -> index in peers
        std::uint64_t announces = 0;
    };

    void remove_peer(channel& ch, std::size_t index);
    std::vector<peer_endpoint> sample(const channel& ch, std::optional<std::size_t> exclude, std::size_t k);
    static channel_info info_of(const core::channel_key& key, const channel& ch);

    registry_config cfg_;
    std::unordered_map<core::channel_key, channel> channels_;
    std::mt19937_64 rng_;
    registry_stats stats_;
};

}  // namespace pixtream::tracker

template <>
struct std::is_error_code_enum<pixtream::tracker::errc> : std::true_type {};
