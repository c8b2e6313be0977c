#pragma once
// Protocol constants; docs/protocol.md quotes each of them.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/core/time.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace pixtream::wire {

inline constexpr std::array<std::byte, 4> magic{std::byte{'P'}, std::byte{'X'}, std::byte{'T'}, std::byte{'M'}};
inline constexpr std::uint8_t protocol_version = 1;

inline constexpr std::size_t frame_header_size = 4;  // the u32 length
inline constexpr std::size_t max_chunk_payload = 1U << 20U;
inline constexpr std::size_t max_frame_size = max_chunk_payload + 128;  // hard limit on `length`
inline constexpr std::size_t min_frame_limit = 64;
inline constexpr std::size_t max_handshake_frame = 256;
inline constexpr std::size_t max_window = core::buffer_map::max_capacity;
// Chunk ids (and buffer-map bases) above this are refused when decoded: windows of ids then never wrap
// around 2^64 and distances between ids always fit. (Sources number chunks from the time in 10 ms
// units: about 2^38 today.) The header reference's "none" value (all ones) is the one exception.
inline constexpr std::uint64_t max_chunk_id = (std::uint64_t{1} << 62U) - 1;
inline constexpr std::size_t max_pex_peers = 50;
inline constexpr std::size_t max_requests_in_flight = 64;
inline constexpr std::size_t max_substreams = 32;  // SUBSCRIBE and GRANT masks are u32

inline constexpr std::size_t handshake_body_size = 60;
inline constexpr std::size_t chunk_signed_header_size = 29;  // id, timestamp, flags, header ref, length
inline constexpr std::size_t signature_size = 64;
inline constexpr std::size_t chunk_body_overhead = chunk_signed_header_size + signature_size;  // 93

inline constexpr core::duration keepalive_interval = core::seconds(10);
inline constexpr core::duration idle_timeout = core::seconds(30);
inline constexpr core::duration handshake_timeout = core::seconds(5);

static_assert(1 + chunk_body_overhead + max_chunk_payload <= max_frame_size);

}  // namespace pixtream::wire
