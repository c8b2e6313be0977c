#pragma once
// Media units read from their headers (pure): MPEG audio (MP1/MP2/MP3) and ADTS (AAC) frames, ID3v2
// tags, and the media type of a stream from its first bytes. Shared by the source's chunker and media
// clock and by the stream output (its Content-Type).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace pixtream::core::media {

using bytes = std::span<const std::byte>;

enum class audio_kind { mpeg, adts };

struct audio_frame {
    audio_kind kind = audio_kind::mpeg;
    std::size_t size = 0;           // the whole frame, header included
    std::uint32_t samples = 0;      // PCM samples (per channel) it decodes to
    std::uint32_t sample_rate = 0;  // Hz
    std::uint32_t family = 0;       // the frames of one stream agree on it (version, layer, rate, ...)
};

// An MPEG-1/2/2.5 audio Layer I/II/III frame header at the start of `b` (4 bytes needed); nullopt when
// it is not one. Free-format frames (bitrate index 0) are refused: their size is not in the header.
std::optional<audio_frame> mpeg_audio_frame(bytes b) noexcept;
// An ADTS (AAC) frame header at the start of `b` (7 bytes needed); nullopt when it is not one.
std::optional<audio_frame> adts_frame(bytes b) noexcept;
// Either of the two, of the given kind.
std::optional<audio_frame> audio_frame_at(audio_kind kind, bytes b) noexcept;

// ID3v2 tags longer than this (cover art, say) are not taken as tags: a unit is never split, and a
// chunk payload is at most 1 MiB.
inline constexpr std::size_t max_id3v2_size = 256 * 1024;

// The size of the Ogg page at the start of `b` (27-byte header, lacing values and body), once all of
// it is there; nullopt before (the capture pattern is not checked).
std::optional<std::size_t> ogg_page_size(bytes b) noexcept;

// The length of an ID3v2 tag at the start of `b` (10-byte header, body and footer); nullopt when
// there is none, or it is longer than max_id3v2_size (10 bytes needed).
std::optional<std::size_t> id3v2_size(bytes b) noexcept;

// Does a run of `frames` audio frames of one kind and family start at b[0]? `more`: not enough bytes
// to tell (at the end of the input, `at_end`, a run cut short by the end counts if at least one whole
// frame is there).
enum class run_answer { no, more, yes };
struct frame_run {
    run_answer answer = run_answer::no;
    audio_kind kind = audio_kind::mpeg;
};
frame_run audio_frames_at(bytes b, std::size_t frames, bool at_end) noexcept;

// The next unit of an MPEG audio or ADTS stream of `kind` at b[0]: a frame, an ID3v2 tag (or an ID3v1
// one, "TAG" and 125 bytes), `more` when the bytes end inside the unit or its header (never at_end),
// `lost` when b[0] starts none of them.
struct audio_unit {
    enum class what { frame, tag, more, lost };
    what is = what::lost;
    std::size_t size = 0;  // frame or tag
    audio_frame frame;     // frames only
};
audio_unit next_audio_unit(audio_kind kind, bytes b, bool at_end) noexcept;

// Where an MPEG audio or ADTS stream can be picked up in `b`: the first offset where an ID3v2 tag or a
// run of `frames` frames starts. `more`: nothing sure yet, but b[offset..] may become one with more
// bytes (keep them); `no`: nothing in b (offset = b.size()).
struct audio_sync {
    run_answer answer = run_answer::no;
    std::size_t offset = 0;
    audio_kind kind = audio_kind::mpeg;
};
audio_sync find_audio_sync(bytes b, std::size_t frames, bool at_end) noexcept;

// Splits an MPEG audio or ADTS stream into units (frames and tags), picking the stream up again
// after garbage. Shared by the source's chunker and media clock, so that both cut alike.
class audio_framer {
public:
    struct step {
        enum class what { unit, skip, more };
        what is = what::more;
        std::size_t size = 0;               // of the unit, or the garbage to skip
        std::optional<audio_frame> frame;   // a unit that is a frame (a tag has none)
        bool resynced = false;              // the sync was lost just before this step
    };

    explicit audio_framer(audio_kind kind = audio_kind::mpeg, bool synced = false) noexcept
        : kind_(kind), synced_(synced) {}
    // What starts b, the bytes not consumed yet; the caller consumes `size` of them for a unit or a skip.
    // `more`: wait for more bytes (at_end: there are none; the rest is a partial unit).
    step next(bytes b, bool at_end) noexcept;
    // The input broke: pick the stream up afresh.
    void lose() noexcept { synced_ = false; }
    // Frames of the other kind that follow garbage (another stream) are followed.
    audio_kind kind() const noexcept { return kind_; }

private:
    audio_kind kind_;
    bool synced_;
    bool just_synced_ = false;  // no unit taken since the last resync: never resync at the same place twice
};

// The MIME type of a stream that starts with `first`: "video/mp2t", "video/ogg" (a Theora stream among
// the beginning-of-stream pages), "audio/ogg", "audio/mpeg" (MPEG audio, also after an ID3v2 tag),
// "audio/aac" (ADTS), else "application/octet-stream".
const char* sniff_media_type(bytes first) noexcept;

}  // namespace pixtream::core::media
