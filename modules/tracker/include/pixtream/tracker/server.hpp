#pragma once
// The tracker's HTTP/JSON server (Boost.Beast, C++20 coroutines): GET /announce, /channels, /stats,
// /metrics. One coroutine per connection, every read and write under a deadline, every buffer bounded.
#include "pixtream/tracker/registry.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace pixtream::tracker {

struct server_config {
    std::size_t max_header_bytes = 8192;   // larger request headers: 400 and close
    std::size_t max_body_bytes = 1024;     // larger request bodies: 413 and close
    core::duration read_timeout = core::seconds(10);   // a request must arrive whole within this: else 408
    core::duration write_timeout = core::seconds(10);
    std::size_t max_connections = 4096;    // further connections are closed at once
    core::duration expiry_period = core::seconds(1);
};

struct server_counters {
    std::uint64_t http_requests = 0;
    std::uint64_t bad_requests = 0;   // answered 4xx
    std::uint64_t timeouts = 0;       // answered 408 or closed for slowness
    std::uint64_t refused_connections = 0;
    std::size_t connections = 0;      // open now
};

class server : public std::enable_shared_from_this<server> {
public:
    // Binds and listens at once, so errors (port in use) surface here as exceptions.
    server(const boost::asio::any_io_executor& ex, const boost::asio::ip::tcp::endpoint& at, registry_config rcfg,
           server_config scfg);

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Accepts connections and expires silent peers until stop().
    boost::asio::awaitable<void> run();
    void stop();

    const registry& reg() const noexcept { return registry_; }
    const server_counters& counters() const noexcept { return counters_; }

private:
    static boost::asio::awaitable<void> serve(std::shared_ptr<server> self, boost::asio::ip::tcp::socket socket);
    static boost::asio::awaitable<void> expire_loop(std::shared_ptr<server> self);

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer expiry_timer_;
    registry registry_;
    server_config cfg_;
    server_counters counters_;
    core::time_point started_;
    bool stopping_ = false;
};

}  // namespace pixtream::tracker
