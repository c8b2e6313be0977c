#pragma once
// The messages of docs/protocol.md as plain values.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"
#include "pixtream/wire/limits.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <variant>
#include <vector>

namespace pixtream::wire {

enum class message_type : std::uint8_t {
    keepalive = 0x00,
    handshake = 0x01,
    buffer_map = 0x02,
    have = 0x03,
    request = 0x04,
    cancel = 0x05,
    reject = 0x06,
    chunk = 0x07,
    peers = 0x08,
    subscribe = 0x09,
    grant = 0x0a,
};

struct keepalive {
    friend bool operator==(const keepalive&, const keepalive&) = default;
};

struct handshake {
    static constexpr std::uint8_t flag_source = 0x01;

    std::uint8_t version = protocol_version;
    std::uint8_t flags = 0;
    core::channel_key channel;
    core::peer_id peer;
    std::uint16_t listen_port = 0;

    bool is_source() const noexcept { return (flags & flag_source) != 0; }
    friend bool operator==(const handshake&, const handshake&) = default;
};

// A window of availability as sent on the wire: bit i stands for chunk base + i.
struct bitmap {
    core::chunk_id base;
    std::uint16_t bit_count = 0;
    std::vector<std::uint8_t> bits;  // ceil(bit_count / 8) bytes, most significant bit first

    bool test(core::chunk_id id) const noexcept;
    // The ids of `map` in [map.base(), map.end()).
    static bitmap from(const core::buffer_map& map);
    // Sets in `map` every id this bitmap holds that falls inside map's window.
    void apply_to(core::buffer_map& map) const;
    friend bool operator==(const bitmap&, const bitmap&) = default;
};

struct have {
    core::chunk_id id;
    friend bool operator==(const have&, const have&) = default;
};
struct request {
    core::chunk_id id;
    friend bool operator==(const request&, const request&) = default;
};
struct cancel {
    core::chunk_id id;
    friend bool operator==(const cancel&, const cancel&) = default;
};
struct reject {
    core::chunk_id id;
    friend bool operator==(const reject&, const reject&) = default;
};

using signature = std::array<std::byte, signature_size>;

struct chunk {
    static constexpr std::uint8_t flag_random_access = 0x01;
    static constexpr std::uint8_t flag_header = 0x02;
    static constexpr std::uint8_t flag_end_of_stream = 0x04;
    static constexpr std::uint8_t known_flags = 0x07;
    static constexpr core::chunk_id no_header{~std::uint64_t{0}};

    core::chunk_id id;
    core::wall_micros timestamp = 0;
    std::uint8_t flags = 0;
    core::chunk_id header_ref = no_header;
    std::vector<std::byte> payload;
    signature sig{};

    bool random_access() const noexcept { return (flags & flag_random_access) != 0; }
    bool is_header() const noexcept { return (flags & flag_header) != 0; }
    bool end_of_stream() const noexcept { return (flags & flag_end_of_stream) != 0; }
    bool has_header_ref() const noexcept { return header_ref != no_header; }
    friend bool operator==(const chunk&, const chunk&) = default;
};

// Chunks are immutable once signed and shared by every queue that sends or plays them.
using chunk_ptr = std::shared_ptr<const chunk>;

struct peer_entry {
    static constexpr std::uint8_t ipv4 = 4;
    static constexpr std::uint8_t ipv6 = 6;

    core::peer_id id;
    std::uint8_t family = ipv4;
    std::array<std::uint8_t, 16> address{};  // IPv4 uses the first 4 bytes
    std::uint16_t port = 0;
    friend bool operator==(const peer_entry&, const peer_entry&) = default;
};

struct peers {
    std::vector<peer_entry> entries;
    friend bool operator==(const peers&, const peers&) = default;
};

// Substream push (docs/protocol.md): substream i of `substreams` holds the chunks whose id % substreams == i.
// SUBSCRIBE: please push me every chunk of the substreams in `mask` as soon as you hold it (replaces the
// previous SUBSCRIBE; mask 0: none). GRANT: the substreams I push to you (a subset of your last
// SUBSCRIBE; sent in answer to each one, and again whenever the set shrinks).
struct subscribe {
    std::uint8_t substreams = 1;
    std::uint32_t mask = 0;
    friend bool operator==(const subscribe&, const subscribe&) = default;
};
struct grant {
    std::uint8_t substreams = 1;
    std::uint32_t mask = 0;
    friend bool operator==(const grant&, const grant&) = default;
};

using message = std::variant<keepalive, handshake, bitmap, have, request, cancel, reject, chunk, peers, subscribe, grant>;

message_type type_of(const message& m) noexcept;
const char* name_of(message_type t) noexcept;

}  // namespace pixtream::wire
