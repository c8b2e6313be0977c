#pragma once
// The source's input: a live stream over HTTP or raw TCP, a file (paced, optionally looped) or standard
// input, or pushed to us (a TCP listener, UDP unicast or multicast), handed to a consumer as a sequence
// of events. Network inputs that drop or cannot be reached are retried with exponential backoff and
// jitter; a live source that goes away is expected to come back. Pushed inputs wait for the
// broadcaster to come back: its next connection (or datagram) continues the stream.
#include "pixtream/core/time.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pixtream::source {

enum class input_kind { http, tcp, file, stdin_, listen, udp, icecast };

// "http", "tcp", "file", "stdin", "listen", "udp", "icecast".
std::string_view to_string(input_kind k) noexcept;

struct input_config {
    input_kind kind = input_kind::file;
    std::string location;                          // URL, host:port, path, or "-" for stdin
    double rate_bytes_per_s = 0;                   // file and stdin pacing; 0 = as fast as consumed
    bool loop = false;                             // file: start again from the beginning at its end
    core::duration min_backoff = core::milliseconds(500);
    core::duration max_backoff = core::seconds(10);
    core::duration connect_timeout = core::seconds(5);  // http/tcp: connecting and sending the request
    core::duration stall_timeout = core::seconds(10);   // http/tcp: no bytes for this long means reconnect
    std::size_t read_size = 64 * 1024;             // largest data event
    int max_reconnects = -1;                       // retries after a failure, counted since the last
                                                   // connection that delivered data; -1 = forever
    int fd = 0;                                    // stdin: the descriptor to read (it is duplicated,
                                                   // never closed, and its flags are restored)
    std::uint64_t seed = 0;                        // backoff jitter; 0 = seeded from std::random_device
};

// Checks a command line's `{http|tcp|file|stdin|listen|udp} SOURCE` pair. nullopt with a readable reason
// in `error`: http wants http://HOST[:PORT][/PATH], tcp wants HOST:PORT (port 1 to 65535; [v6]:PORT and
// a tcp:// prefix are accepted), file must exist and be readable, stdin takes "-" (or nothing); listen
// takes [ADDRESS:]PORT to accept a broadcaster's TCP connection on (tcp:// prefix accepted; address
// 0.0.0.0 when left out); udp takes [ADDRESS:]PORT (udp:// prefix accepted), a multicast ADDRESS
// being joined; icecast takes [ADDRESS:]PORT to accept an Icecast source client's PUT (or SOURCE) on.
std::optional<input_config> parse_input(std::string_view kind, std::string_view location, std::string& error);

enum class input_event_kind {
    data,          // bytes of the stream, in order
    disconnected,  // a connection that was up dropped (closed, stalled, failed): cut what you have; a retry
                   // follows unless the message says otherwise
    reconnected,   // the input is back after a disconnect or failure, or a looped file starts again: the
                   // bytes that follow begin a fresh stream (container headers first)
    ended,         // the input is finished for good: always the last event of run() (not sent after stop())
    failed,        // an attempt failed (cannot open, resolve or connect; HTTP error status); the message says
                   // whether and when the reader retries; without a retry, `ended` follows
};

std::string_view to_string(input_event_kind k) noexcept;

struct input_event {
    input_event_kind kind = input_event_kind::data;
    std::vector<std::byte> bytes;  // data only
    std::string message;           // human-readable, for the others
};

struct input_stats {
    std::uint64_t bytes = 0;       // data bytes delivered
    std::uint64_t reconnects = 0;  // `reconnected` events (including restarts of a looped file)
    std::uint64_t failures = 0;    // `failed` and `disconnected` events
    bool connected = false;        // a connection or descriptor is open and being read
    std::string last_error;        // the reason of the last failure or disconnect
};

// Reads one input until it ends or stop() is called, handing every event to the sink on the reader's
// executor. The sink is either a plain function `void(input_event)`, called synchronously, or a function
// returning `asio::awaitable<void>`, which is awaited. Either way the reader reads nothing more until the
// sink is done with an event: a slow consumer slows the reader down (the kernel's socket and pipe buffers
// hold the rest) and nothing queues up without bound.
//
// Not thread-safe: call run() and stop() on the executor's thread; the reader must outlive run().
class input_reader {
public:
    using plain_sink = std::function<void(input_event)>;
    using awaitable_sink = std::function<boost::asio::awaitable<void>(input_event)>;

    template <class Sink>
        requires std::is_invocable_v<Sink&, input_event>
    input_reader(const boost::asio::any_io_executor& ex, input_config cfg, Sink sink) : input_reader(ex, std::move(cfg)) {
        if constexpr (std::is_same_v<std::invoke_result_t<Sink&, input_event>, boost::asio::awaitable<void>>)
            awaitable_sink_ = std::move(sink);
        else
            plain_sink_ = std::move(sink);
    }
    ~input_reader();
    input_reader(const input_reader&) = delete;
    input_reader& operator=(const input_reader&) = delete;

    // Pushed inputs (listen, udp): binds the socket now, so that a port in use is an error at start-up;
    // the reason, or "" (also for the other kinds, which have nothing to bind). run() binds if this
    // was not called.
    std::string bind();
    // Reads until the input ends for good (then the last event is `ended`) or stop() is called.
    boost::asio::awaitable<void> run();
    // Ends run() soon: pending reads, connects and waits are cancelled; no further event is delivered
    // once the current sink call returns. May be called from inside the sink.
    void stop();
    bool stopping() const noexcept { return stopping_; }

    const input_config& config() const noexcept { return cfg_; }
    const input_stats& stats() const noexcept { return stats_; }

private:
    struct attempt_result;

    input_reader(const boost::asio::any_io_executor& ex, input_config cfg);

    boost::asio::awaitable<void> deliver(input_event ev);
    boost::asio::awaitable<bool> wait_for(core::duration d);  // false when stopped
    boost::asio::awaitable<void> run_descriptor();
    boost::asio::awaitable<void> run_network();
    boost::asio::awaitable<attempt_result> attempt_tcp();
    boost::asio::awaitable<attempt_result> attempt_http();
    boost::asio::awaitable<std::string> connect();  // resolve and connect; the reason it failed, or ""
    boost::asio::awaitable<void> on_connected();
    boost::asio::awaitable<void> run_listen();
    boost::asio::awaitable<void> run_udp();
    boost::asio::awaitable<std::string> read_icecast(std::string who);
    // Delivers what the connection sends as data events until it fails, stalls or stop(); the reason
    // ("" when stopped). `got_data` tells whether any came.
    boost::asio::awaitable<std::string> read_raw(std::string where, bool& got_data);
    // Delivers an HTTP body (a response's or a request's) as data events until it ends, the stream
    // fails or stop(); the reason it stopped ("" at its end). `got_data` tells whether any came.
    template <bool IsRequest>
    boost::asio::awaitable<std::string> read_body(boost::beast::http::parser<IsRequest, boost::beast::http::buffer_body>& parser,
                                                  boost::beast::flat_buffer& buffer, std::string where, bool& got_data);
    boost::asio::awaitable<void> give_up(std::string why);  // failed, then ended
    void close_descriptor() noexcept;
    core::duration next_backoff();

    input_config cfg_;
    plain_sink plain_sink_;
    awaitable_sink awaitable_sink_;
    boost::asio::steady_timer timer_;  // pacing and backoff waits
    boost::asio::ip::tcp::resolver resolver_;
    boost::beast::tcp_stream stream_;
    boost::asio::posix::stream_descriptor descriptor_;
    boost::asio::ip::tcp::acceptor acceptor_;  // listen
    boost::asio::ip::udp::socket udp_;         // udp
    bool bound_ = false;
    std::string host_;       // http/tcp: the name or address to resolve (no brackets)
    std::string port_;       // http/tcp: service
    std::string target_;     // http: request target
    std::string authority_;  // http: Host header
    std::optional<int> saved_flags_;  // of the stdin descriptor, restored on close
    input_stats stats_;
    std::mt19937_64 rng_;
    core::duration backoff_{};
    bool had_attempt_ = false;  // a connection attempt has been made before (the next success is a reconnect)
    bool stopping_ = false;
};

}  // namespace pixtream::source
