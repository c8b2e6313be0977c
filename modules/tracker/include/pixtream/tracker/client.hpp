#pragma once
// The tracker client: one announce as an awaitable, and the announce loop a source or peer runs
// (interval from the response, exponential backoff with jitter on failure, several tracker URLs).
#include "pixtream/tracker/registry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace pixtream::tracker {

// An `http://host[:port][/prefix]` tracker address. The announce goes to prefix + "/announce".
struct tracker_url {
    std::string host;
    std::string port = "80";
    std::string prefix;
    std::string text;  // as given, for messages
};

// nullopt with a reason in `error` when `text` is not such a URL.
std::optional<tracker_url> parse_tracker_url(std::string_view text, std::string& error);

struct announce_reply {
    core::duration interval;
    std::vector<peer_endpoint> peers;
};

// One announce: resolve, connect, GET, parse the JSON. Never throws for network or protocol
// failures; returns a human-readable reason instead.
boost::asio::awaitable<std::variant<announce_reply, std::string>> announce_once(tracker_url url, announce_params params,
                                                                                core::duration timeout);

// Plain GET of `path` on the tracker, returning the body of a 200 response or a reason.
boost::asio::awaitable<std::variant<std::string, std::string>> http_get(tracker_url url, std::string path,
                                                                        core::duration timeout);

struct client_config {
    std::vector<tracker_url> urls;
    announce_params params;                              // event and numwant are managed by the client
    core::duration timeout = core::seconds(5);
    core::duration min_backoff = core::seconds(1);
    core::duration max_backoff = core::seconds(60);
    core::duration max_interval = core::seconds(300);    // a tracker cannot make us wait longer
    std::uint64_t seed = 0;
};

struct client_status {
    std::uint64_t announces_ok = 0;
    std::uint64_t failures = 0;
    std::uint32_t consecutive_failures = 0;
    std::string last_error;
    std::size_t current_url = 0;
};

// Announces `started`, then regularly, then `stopped` when stop() is called.
class client {
public:
    using peers_handler = std::function<void(const std::vector<peer_endpoint>&)>;
    // Called with the reason after each failed announce (the loop goes on by itself).
    using error_handler = std::function<void(const std::string&)>;

    client(const boost::asio::any_io_executor& ex, client_config cfg, peers_handler on_peers);

    // Runs until stop(); announces `stopped` (best effort) before returning.
    boost::asio::awaitable<void> run();
    void stop();
    // Ask the tracker for more peers now (for example when few neighbours are left).
    void announce_now();
    void on_error(error_handler h) { on_error_ = std::move(h); }

    const client_status& status() const noexcept { return status_; }

private:
    client_config cfg_;
    peers_handler on_peers_;
    error_handler on_error_;
    boost::asio::steady_timer timer_;
    client_status status_;
    std::mt19937_64 rng_;
    bool stopping_ = false;
};

}  // namespace pixtream::tracker
