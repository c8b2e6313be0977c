#pragma once
// Every protocol violation is one of these; the connection is closed on any of them.
#include <system_error>

namespace pixtream::wire {

enum class errc {
    empty_frame = 1,
    frame_too_large,
    unknown_message_type,
    truncated_message,
    trailing_bytes,
    bad_magic,
    unsupported_version,
    bitmap_too_large,
    bitmap_padding,
    invalid_chunk_flags,
    payload_too_large,
    too_many_peers,
    bad_address_family,
    invalid_port,
    handshake_expected,
    unexpected_handshake,
    channel_mismatch,
    self_connection,
    bad_signature,
    chunk_id_out_of_range,
    bad_substreams,
};

const std::error_category& wire_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), wire_category()}; }

}  // namespace pixtream::wire

template <>
struct std::is_error_code_enum<pixtream::wire::errc> : std::true_type {};
