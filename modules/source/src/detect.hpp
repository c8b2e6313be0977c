#pragma once
// Internal: which container a byte stream holds (pure), shared by the chunker and the media clock so
// that both decide alike. The decision depends on the bytes only, never on how they were split.
#include "pixtream/core/media.hpp"
#include "pixtream/source/chunker.hpp"

#include <cstddef>
#include <span>

namespace pixtream::source::detail {

// Automatic mode looks this far into the input; nothing found there: raw.
inline constexpr std::size_t detect_window = 64 * 1024;
// MPEG-TS: this many syncs at a 188-byte stride; MPEG audio / ADTS: this many frames in a row.
inline constexpr std::size_t detect_ts_packets = 5;
inline constexpr std::size_t detect_audio_frames = 3;

struct detection {
    bool decided = false;       // false: more bytes are needed (`from` says where to look again)
    container kind = container::raw;
    std::size_t offset = 0;     // where the container starts (bytes before it are garbage)
    std::size_t from = 0;       // offsets below this were ruled out
};

// MPEG audio frames for mp3, ADTS ones for adts (and the other way round).
inline core::media::audio_kind audio_kind_of(container c) noexcept {
    return c == container::adts ? core::media::audio_kind::adts : core::media::audio_kind::mpeg;
}
inline container container_of(core::media::audio_kind k) noexcept {
    return k == core::media::audio_kind::adts ? container::adts : container::mp3;
}

// Where a lost MPEG-TS or Ogg stream can be picked up in `b`: `found` at `offset`, or not found and
// the bytes from `offset` on must be kept (a candidate that more bytes may confirm; b.size(): none).
struct sync_point {
    bool found = false;
    std::size_t offset = 0;
};
// MPEG-TS: three syncs at a 188-byte stride (at the end of input, one whole packet will do).
sync_point find_ts_sync(std::span<const std::byte> b, bool at_end) noexcept;
// Ogg: "OggS" and version 0.
sync_point find_ogg_sync(std::span<const std::byte> b, bool at_end) noexcept;

// Looks for MPEG-TS, Ogg, MPEG audio (MP3) or ADTS at offsets from `from` on; `at_end`: no more bytes
// will come. Undecided past the window or at the end: raw.
detection detect_container(std::span<const std::byte> b, std::size_t from, bool at_end) noexcept;

}  // namespace pixtream::source::detail
