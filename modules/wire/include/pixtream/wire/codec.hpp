#pragma once
// Encoding of messages into frames, and decoding of one frame body. No I/O.
#include "pixtream/wire/messages.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace pixtream::wire {

// Size of the whole frame for m: the 4-byte length plus type and body.
std::size_t frame_size(const message& m) noexcept;

// Appends the whole frame for m to out.
void encode(const message& m, std::vector<std::byte>& out);

// The frame of a CHUNK up to its payload: length, type and the 29-byte signed header. A writer sends
// {prefix, payload, signature} as one gathered write, without copying the payload.
using chunk_prefix = std::array<std::byte, frame_header_size + 1 + chunk_signed_header_size>;
chunk_prefix encode_chunk_prefix(const chunk& c) noexcept;

// The 29 signed header bytes of a CHUNK (id through payload length).
std::array<std::byte, chunk_signed_header_size> chunk_signed_header(const chunk& c) noexcept;

// Decodes one frame body (type byte and what follows, without the length prefix).
// Returns the message, or nullopt with `ec` set to a wire::errc.
std::optional<message> decode_body(std::span<const std::byte> body, std::error_code& ec);

}  // namespace pixtream::wire
