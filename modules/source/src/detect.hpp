#pragma once
// Internal: which container a byte stream holds (pure), shared by the chunker and the media clock so
// that both decide alike. The decision depends on the bytes only, never on how they were split.
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

// Looks for MPEG-TS, Ogg, MPEG audio (MP3) or ADTS at offsets from `from` on; `at_end`: no more bytes
// will come. Undecided past the window or at the end: raw.
detection detect_container(std::span<const std::byte> b, std::size_t from, bool at_end) noexcept;

}  // namespace pixtream::source::detail
