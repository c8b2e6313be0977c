#pragma once
// One TCP connection of the hostile peer to its victim. Every operation is bounded by a deadline,
// and reading is explicit (inline, when the attack asks for it), so an attack can also never read.
// What the victim sends is decoded and counted by type; when and how it closes the connection is
// recorded, and report() gives all of it as one JSON object.
#include "pixtream/core/ids.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "pixtream/wire/messages.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pixtream::hostile {

using clock = std::chrono::steady_clock;

class connection {
public:
    connection(const boost::asio::any_io_executor& ex, std::string attack, std::string phase, int index,
               const core::peer_id& id);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Connects within `timeout`. `rcvbuf` (if set) shrinks our receive buffer first, so that a victim
    // writing to a connection we do not read blocks soon. False (and error() says why) on failure.
    boost::asio::awaitable<bool> connect(boost::asio::ip::tcp::endpoint victim, clock::duration timeout,
                                         std::optional<int> rcvbuf = std::nullopt);
    // Writes all of `bytes` unless the victim closes or `deadline` passes first (then false).
    boost::asio::awaitable<bool> send(std::span<const std::byte> bytes, clock::time_point deadline);
    // Reads and decodes what the victim sends until `done()` holds, the victim closes, or `deadline`
    // passes (a deadline in the past reads only what is there already). Returns done().
    boost::asio::awaitable<bool> read_until(std::function<bool()> done, clock::time_point deadline);
    // Without reading a byte: waits until the victim closes (seen through TCP_INFO) or `deadline`.
    // With `keepalive`, sends KEEPALIVE that often so that the victim's idle timeout cannot fire.
    boost::asio::awaitable<void> wait_closed_unread(clock::time_point deadline,
                                                    std::optional<clock::duration> keepalive);
    // Bytes the victim sent that wait in our receive buffer (not read yet).
    std::size_t unread_bytes();
    // Closes our side (at the end of the attack).
    void close() noexcept;

    // The hostile frame goes out now: closed_after_attack_s counts from here.
    void mark_attack() noexcept { attack_at_ = clock::now(); }

    bool connected() const noexcept { return connected_; }
    bool closed() const noexcept { return closed_; }
    clock::time_point started() const noexcept { return started_; }
    const core::peer_id& id() const noexcept { return id_; }
    // The victim's HANDSHAKE came in / it sent its BUFFER_MAP (it admitted us).
    bool victim_handshake() const noexcept { return count(wire::message_type::handshake) > 0; }
    bool admitted() const noexcept { return count(wire::message_type::buffer_map) > 0; }
    std::size_t count(wire::message_type t) const noexcept { return counts_[static_cast<std::size_t>(t)]; }
    // The newest chunk id the victim mentioned (BUFFER_MAP, HAVE or CHUNK).
    std::optional<core::chunk_id> live_edge() const noexcept { return edge_; }
    // The largest chunk the victim sent us: its id and payload size.
    std::optional<std::pair<core::chunk_id, std::size_t>> largest_chunk() const noexcept { return largest_; }
    // Ids the victim said it holds: its last BUFFER_MAP, then the HAVEs since (the newest 4096).
    const std::vector<core::chunk_id>& held() const noexcept { return held_; }

    // Extra attack-specific facts for the report.
    boost::json::object& details() noexcept { return details_; }
    void set_error(std::string e) {
        if (error_.empty()) error_ = std::move(e);
    }
    boost::json::object report() const;

private:
    void on_closed(std::string why);
    void on_message(const wire::message& m);
    // Reads whatever is readable now without blocking; false when nothing was.
    bool read_available();
    static double seconds_since(clock::time_point from, clock::time_point to) {
        return std::chrono::duration<double>(to - from).count();
    }

    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    std::string attack_;
    std::string phase_;
    int index_;
    core::peer_id id_;

    bool connected_ = false;
    bool closed_ = false;
    std::string close_reason_;
    std::string error_;
    clock::time_point started_ = clock::now();
    clock::time_point last_send_ = started_;
    std::optional<clock::time_point> attack_at_;
    std::optional<clock::time_point> closed_at_;
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;

    wire::frame_decoder decoder_;
    std::string decode_error_;
    std::array<std::size_t, 9> counts_{};
    std::optional<core::chunk_id> edge_;
    std::vector<core::chunk_id> held_;
    std::optional<std::pair<core::chunk_id, std::size_t>> largest_;
    boost::json::object details_;
};

}  // namespace pixtream::hostile
