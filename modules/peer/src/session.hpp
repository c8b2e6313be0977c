#pragma once
// One connection to a neighbour: handshake, reader and writer coroutines, upload queue, keepalive.
// Private to modules/peer; the node owns sessions and is told everything they receive.
#include "pixtream/peer/node.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "pixtream/wire/session_rules.hpp"

#include <deque>
#include <optional>
#include <variant>

namespace pixtream::peer {

class session : public std::enable_shared_from_this<session> {
public:
    static constexpr std::size_t max_control_bytes = 1 << 20;  // queued small messages: beyond, close
    static constexpr std::size_t control_entry_overhead = 48;  // per queued message: its vector and allocation
    static constexpr std::size_t max_pushes = 32;              // queued unsolicited chunks: beyond, drop
    // REQUESTs beyond max_requests_in_flight are REJECTed; this many of them and the neighbour is banned.
    static constexpr std::size_t max_excess_requests = 256;

    session(std::shared_ptr<node> owner, boost::asio::ip::tcp::socket socket, bool outgoing);

    // Handshake, then reader and writer until either ends; the node is told when it closes.
    static boost::asio::awaitable<void> run(std::shared_ptr<session> self);
    void close(const std::string& why);
    bool closed() const noexcept { return closed_; }

    // Queues a small message (anything but CHUNK).
    void send(const wire::message& m);
    // Queues a chunk the neighbour did not ask for (a push): dropped if too many wait. Returns
    // whether it was queued.
    bool push(wire::chunk_ptr c);
    // The neighbour announced `id`: a push of it still queued is dropped.
    void drop_push(core::chunk_id id) noexcept;
    // A REQUEST from the neighbour: served in order, or REJECTed when this queue is full or the node's
    // upload backlog is longer than node_config::max_upload_backlog.
    void requested(core::chunk_id id);
    void cancelled(core::chunk_id id);
    // The neighbour broke the protocol: banned if it identified itself, else just disconnected.
    void violation(const std::string& why);
    void wake_writer() noexcept { notify_writer(); }
    // The chunk this session would upload next (its push, else its first requested chunk), if any.
    std::optional<core::chunk_id> next_upload() const noexcept;
    bool has_push() const noexcept { return !pushes_.empty(); }
    // The oldest chunk queued for upload here, and dropping a queued upload with a REJECT.
    std::optional<core::chunk_id> stalest_upload() const noexcept;
    std::size_t queued_bytes_before(core::chunk_id id) const noexcept;  // queued uploads older than id
    void displace(core::chunk_id id);

    // Uplink measurement: bytes unsent in this socket's kernel queue (SIOCOUTQNSD), and the bytes the
    // neighbour acknowledged since the last call (written minus still queued, SIOCOUTQ).
    std::size_t kernel_unsent() const noexcept;
    std::uint64_t take_delivered() noexcept;
    // Bytes in this socket's kernel queue, sent or not (SIOCOUTQ), and its smoothed RTT (TCP_INFO).
    std::size_t kernel_outstanding() const noexcept;
    core::duration rtt() const noexcept;

    // The neighbour, once the handshake is done.
    const core::peer_id& remote_id() const noexcept { return remote_id_; }
    const std::string& remote_ip() const noexcept { return remote_ip_; }
    std::uint16_t remote_port() const noexcept { return remote_port_; }
    bool remote_is_source() const noexcept { return remote_is_source_; }
    bool outgoing() const noexcept { return outgoing_; }
    bool established() const noexcept { return established_; }
    // What the neighbour holds, as far as it told us.
    core::buffer_map& remote_map() noexcept { return remote_map_; }
    const core::buffer_map& remote_map() const noexcept { return remote_map_; }
    // Chunks we sent to or received from this neighbour: no need to announce them back.
    bool knows(core::chunk_id id) const noexcept { return remote_map_.test(id); }

private:
    struct outgoing_frame {
        std::vector<std::byte> bytes;  // encoded small messages
        wire::chunk_ptr chunk;         // or a chunk (pushed or requested)
        bool requested = false;        // the chunk answers a REQUEST (a CANCEL may withdraw it)
    };

    static boost::asio::awaitable<void> reader(std::shared_ptr<session> self);
    static boost::asio::awaitable<void> writer(std::shared_ptr<session> self);
    // Writes a chunk frame in slices of at most `slice` bytes, each once the kernel wants more data
    // (TCP_NOTSENT_LOWAT) and the pacing allows it. Before its first slice a requested chunk that the
    // neighbour CANCELled is dropped (cancelled); afterwards the frame is finished.
    enum class write_result { written, cancelled, failed };
    static boost::asio::awaitable<write_result> write_chunk(std::shared_ptr<session> self, wire::chunk_ptr c,
                                                            bool requested);
    void notify_writer() noexcept;
    void give_up_slot() noexcept;  // releases the node's upload slot if this session holds it
    bool next_frame(outgoing_frame& out);
    // Drops every queued chunk (closing): the node's upload backlog forgets them.
    void drop_queued() noexcept;

    struct queued_upload {
        core::chunk_id id;
        std::size_t bytes;  // its frame size, counted in the node's upload backlog
    };

    std::shared_ptr<node> owner_;
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer writer_wake_;
    bool writer_woken_ = false;
    bool outgoing_;
    bool closed_ = false;
    bool established_ = false;
    std::string close_reason_;

    wire::frame_decoder decoder_;
    wire::session_rules rules_;
    core::peer_id remote_id_;
    std::string remote_ip_;
    std::uint16_t remote_port_ = 0;
    bool remote_is_source_ = false;
    core::buffer_map remote_map_{core::buffer_map::max_capacity};

    std::deque<std::vector<std::byte>> control_;
    std::deque<bool> control_is_reject_;  // per control_ entry: a REJECT (an answer to a request)
    std::size_t queued_rejects_ = 0;      // REJECTs not yet written: requests still unanswered
    std::size_t control_bytes_ = 0;
    std::deque<wire::chunk_ptr> pushes_;
    std::deque<queued_upload> uploads_;
    std::size_t excess_requests_ = 0;
    std::optional<core::chunk_id> pacing_;  // the requested chunk the writer waits to send
    bool pacing_cancelled_ = false;         // ... and the neighbour CANCELled it meanwhile
    core::time_point last_sent_{};
    std::uint64_t bytes_written_ = 0;   // handed to the kernel, ever
    bool holds_slot_ = false;           // this session holds one of the node's upload slots
    std::uint64_t delivered_seen_ = 0;  // acknowledged, as of the last take_delivered()
};

}  // namespace pixtream::peer
