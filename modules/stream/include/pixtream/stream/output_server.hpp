#pragma once
// Serves the rebuilt stream to any number of local players over TCP (Boost.Asio/Beast coroutines).
//
// - A client that sends nothing within `raw_detect` is a raw TCP client: it gets the stream bytes.
// - A client that sends an HTTP request: `GET /` (any path but /stats) gets `200 OK` and the stream
//   until it ends (no Content-Length, Connection: close; optionally chunked, see http_chunked); `GET /stats` the owner's JSON; `HEAD` the
//   headers only; other methods 405, malformed requests 400, slow ones 408.
// - Decodable joins: a new client, and every client after gap(), starts at a random-access chunk and
//   gets the payload of the header chunk it refers to (header_ref) first, unless that is the header it
//   got last. A player therefore always starts at container headers plus a keyframe.
// - Fast start (burst on connect): a new client gets at once the chunks already played from a recent
//   random-access chunk on (the latest one at least `burst_seconds` of source time before the newest
//   chunk, else the oldest held), so that it decodes its first frame without waiting for the next
//   keyframe, and its probing (ffmpeg reads seconds of a stream before it plays) is fed at once; then it
//   follows live. It plays that much further behind. After gap() a client waits for the next
//   random-access chunk instead.
// - Bounded memory: each client has a queue of shared chunks (no copies) bounded in bytes; a client
//   that falls further behind is disconnected and counted, never blocking the writer or the others.
//
// Not thread-safe: construct it, and call every member function, on one executor (a single-threaded
// io_context or a strand); the peer's playout feeds it from there.
#include "pixtream/core/time.hpp"
#include "pixtream/wire/messages.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace pixtream::stream {

struct output_config {
    // Content-Type of `GET /`; empty: from the first bytes a client gets (core::media::sniff_media_type:
    // video/mp2t, video/ogg or audio/ogg, audio/mpeg, audio/aac, else application/octet-stream).
    std::string content_type{};
    core::duration raw_detect = core::milliseconds(300);  // silence after connecting that means raw TCP
    core::duration read_timeout = core::seconds(5);       // a whole HTTP request must arrive within this
    core::duration write_timeout = core::seconds(10);     // one gathered write; slower: disconnected
    std::size_t max_header_bytes = 8192;                  // larger HTTP requests: 400
    std::size_t max_queue_bytes = 8 * 1024 * 1024;        // per client, chunks not yet written
    std::size_t max_connections = 256;                    // further connections are closed at once
    std::size_t headers_kept = 8;                         // header chunks remembered (the latest by id)
    // Fast start: history kept for new clients (chunks since a random-access chunk), and how far back
    // their burst starts; burst_seconds 0: no burst (a new client waits for the next random-access chunk).
    // 5.5 s: ffmpeg and ffplay read 5 s of a stream (max_analyze_duration) before they decode.
    double burst_seconds = 5.5;
    std::size_t burst_max_bytes = 4 * 1024 * 1024;  // under max_queue_bytes, with room for live chunks
    // HTTP/1.1 players get the stream with Transfer-Encoding: chunked instead of delimited by the
    // close. ffmpeg (5.1) reports "Stream ends prematurely" (an I/O error) at the end of a
    // close-delimited body of unknown length; with chunked coding it sees a clean end of stream.
    bool http_chunked = false;
};

struct output_stats {
    std::size_t connections = 0;                 // open now, in any state
    std::size_t clients = 0;                     // players being streamed to now
    std::uint64_t clients_served = 0;            // players ever streamed to (raw and HTTP)
    std::uint64_t bytes_sent = 0;                // bytes written to players (HTTP heads and framing included)
    std::uint64_t dropped_slow = 0;              // players disconnected for being slow: queue over
                                                 // max_queue_bytes, or a write over write_timeout
    std::uint64_t http_requests = 0;             // complete HTTP requests read
    std::uint64_t bad_requests = 0;              // answered 4xx or 503
    std::uint64_t refused_connections = 0;       // over max_connections
    std::uint64_t chunks_written = 0;            // write() calls with a chunk
    std::uint64_t gaps = 0;                      // gap() calls
    std::optional<core::time_point> first_byte;  // when the first stream byte reached any player
};

class output_server : public std::enable_shared_from_this<output_server> {
public:
    // Binds and listens at once: a port in use throws boost::system::system_error ("cannot listen on
    // ADDRESS:PORT: ..."). `stats_json` answers GET /stats; empty: stats_json() below.
    output_server(const boost::asio::any_io_executor& ex, const boost::asio::ip::tcp::endpoint& at,
                  output_config cfg = {}, std::function<std::string()> stats_json = {});
    ~output_server();
    output_server(const output_server&) = delete;
    output_server& operator=(const output_server&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Accepts players until stop(). The object must be owned by a shared_ptr.
    boost::asio::awaitable<void> run();
    // Closes the listening socket and every connection at once.
    void stop();

    // The next chunk in play order. A header chunk is also registered (as by set_header()); a chunk
    // flagged end_of_stream ends the stream after it (as by end_of_stream()).
    void write(wire::chunk_ptr c);
    // Chunks were skipped before the next write(): every player resynchronises at the next
    // random-access chunk.
    void gap();
    // Registers a header chunk that random-access chunks may refer to (the latest few are kept).
    void set_header(wire::chunk_ptr c);
    // The stream ended: every player gets what is queued for it, then EOF. Later players get EOF (raw)
    // or 503 (HTTP) at once. Irreversible.
    void end_of_stream();

    const output_stats& stats() const noexcept { return stats_; }
    // This server's counters as a JSON object.
    std::string stats_json() const;

private:
    struct client;
    using client_list = std::list<std::shared_ptr<client>>;

    static boost::asio::awaitable<void> serve(std::shared_ptr<output_server> self, std::shared_ptr<client> c);
    static boost::asio::awaitable<void> stream_to(std::shared_ptr<output_server> self, std::shared_ptr<client> c);
    static boost::asio::awaitable<void> reply(std::shared_ptr<output_server> self, std::shared_ptr<client> c,
                                              std::string response);
    static boost::asio::awaitable<void> close_gracefully(std::shared_ptr<client> c);

    void start_streaming(client& c, bool http);
    void enqueue(client& c, const wire::chunk_ptr& chunk);
    // Hands one chunk in play order to one client (synchronising it at a random-access chunk).
    void feed(client& c, const wire::chunk_ptr& chunk);
    // The burst for a new client: the history from the random-access chunk it starts at.
    void burst(client& c);
    void remember(const wire::chunk_ptr& chunk);
    void drop(client& c);
    wire::chunk_ptr find_header(core::chunk_id id) const;
    std::string guess_content_type(std::span<const std::byte> first) const;
    std::string stream_response_head(std::span<const std::byte> first, bool chunked) const;

    boost::asio::ip::tcp::acceptor acceptor_;
    output_config cfg_;
    std::function<std::string()> stats_json_;
    client_list clients_;                    // every open connection
    std::deque<wire::chunk_ptr> headers_;    // by ascending id, at most cfg_.headers_kept
    std::deque<wire::chunk_ptr> history_;    // chunks played, in order, starting at a random-access one
    std::size_t history_bytes_ = 0;
    output_stats stats_;
    bool stopping_ = false;
    bool ended_ = false;
};

}  // namespace pixtream::stream
