#pragma once
// The scripted attacks of pixtream-hostile. Each runs one or two connections to the victim (see
// attack_help) and emits one JSON report per connection; none lasts longer than options::duration
// after connecting (plus the connect timeout).
#include "pixtream/core/ids.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pixtream::hostile {

enum class attack {
    garbage,
    oversized,
    out_of_window,
    forged,
    request_flood,
    have_flood,
    slowloris,
    stall,
    probe,
};

struct attack_info {
    attack kind;
    std::string_view name;
    std::string_view help;
};

// Every attack with its name and a description, in the order --help lists them.
const std::vector<attack_info>& attacks();
std::optional<attack> parse_attack(std::string_view name);
std::string_view name_of(attack a);

struct options {
    boost::asio::ip::tcp::endpoint victim;
    core::channel_key channel;
    std::optional<core::peer_id> peer_id;  // else a random one per connection
    std::uint16_t listen_port = 0;
    int connections = 1;
    double duration = 10;           // seconds each connection lasts at most, after connecting
    double connect_timeout = 5;
    std::size_t flood = 5000;        // messages of request-flood and have-flood
    std::size_t stall_bytes = 6U << 20U;  // stall: chunk bytes asked for, more than the socket buffers hold
    double drip_interval = 1.0;      // slowloris: seconds between handshake bytes
    std::size_t garbage_bytes = 4096;
};

// Shared by the connections of one run (one thread: no locks).
struct context {
    boost::asio::any_io_executor executor;
    options opt;
    std::mt19937_64 rng;
    std::function<void(const boost::json::object&)> emit;  // one report per connection
    std::size_t connected = 0;                             // connections that were established
};

// Runs connection `index` of attack `a` (one or two TCP connections) and emits its report(s).
boost::asio::awaitable<void> run(context* ctx, attack a, int index);

}  // namespace pixtream::hostile
