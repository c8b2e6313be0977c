#pragma once
// The media's own clock in the source's input, and the pacing that publishes the input at real time
// by it (pure: no I/O, no clock; time is a parameter).
//
// media_clock splits the input bytes, in order and without dropping any, into pieces, each with the
// media time of its first timed unit:
// - MPEG-TS: the PCR (program clock reference) of the first PID that carries one; until a PCR is
//   seen, the PTS of the first PID with PES timestamps (the switch to the PCR keeps the time going).
//   The 33-bit wrap is followed; a PCR discontinuity_indicator, or a jump of more than 1 s back or
//   3 s ahead, is a discontinuity.
// - Ogg: the granule position of the clock stream's pages, in seconds (the first stream of a link
//   whose codec gives its rate: Vorbis, Opus, FLAC, Speex or Theora). A new link (chained stream) or
//   a jump of more than 1 s back or 10 s ahead is a discontinuity.
// - MP3 (MPEG audio) and ADTS (AAC): the samples of the frames before, over their sample rate.
// - raw: bytes over `raw_bytes_per_s` when that is set, else no time at all.
// Consecutive units less than `merge` apart share a piece. A unit split across feeds waits for the
// rest, so a piece holds whole units only (bytes the parser cannot place travel with the piece
// before them).
//
// media_pacer turns a piece's media time into the time to publish it: the first timed piece (and the
// first after a discontinuity) anchors media time to `now`; a later one is due at anchor + its media
// time since the anchor's. An input that arrives faster than real time (a file, a dump over TCP) is so
// held back to real time; one that arrives late by more than `max_late` (a stalled live input) moves
// the anchor, so that the pieces after it are not all published at once.
#include "pixtream/core/time.hpp"
#include "pixtream/source/chunker.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace pixtream::source {

struct timed_piece {
    std::vector<std::byte> bytes;
    std::optional<double> media_s;  // seconds on the media's clock; nullopt: nothing timed yet
    bool discontinuity = false;     // the clock jumped (or the stream restarted) at this piece
};

enum class clock_source { none, pcr, pts, granule, frames, bytes };

// "none", "PCR", "PTS", "granule position", "audio frames" or "byte rate".
const char* name_of(clock_source c) noexcept;

struct media_clock_config {
    container kind = container::automatic;  // as the chunker's: detected from the bytes when automatic
    double raw_bytes_per_s = 0;             // raw input: its byte rate (0: raw input has no time)
    double merge_s = 0.05;                  // units closer than this share a piece
    // automatic: a slow input that shows no container this long after its first byte is raw (as the
    // chunker's max_duration; only with the feed() that is given the time).
    core::duration detect_timeout = core::milliseconds(500);
};

struct media_clock_stats {
    std::uint64_t bytes = 0;             // fed
    std::uint64_t timed_units = 0;       // units that carried a time
    std::uint64_t discontinuities = 0;
};

class media_clock {
public:
    explicit media_clock(media_clock_config cfg = {});
    ~media_clock();
    media_clock(media_clock&&) noexcept;
    media_clock& operator=(media_clock&&) noexcept;
    media_clock(const media_clock&) = delete;
    media_clock& operator=(const media_clock&) = delete;

    // Appends the pieces that are complete to `out`.
    void feed(std::span<const std::byte> data, std::vector<timed_piece>& out);
    // The same, for bytes received at `now`: detection gives up after detect_timeout.
    void feed(std::span<const std::byte> data, core::time_point now, std::vector<timed_piece>& out);
    // The input ended or broke: what is held goes out; the next bytes start a fresh stream (its first
    // timed piece is a discontinuity; in automatic mode its container is detected afresh).
    void finish(std::vector<timed_piece>& out);

    container kind() const noexcept;       // `automatic` until decided
    clock_source source() const noexcept;  // what times the pieces now
    const media_clock_stats& stats() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

struct media_pacer_config {
    core::duration max_late = core::seconds(1);    // later than this: the anchor moves
    core::duration max_early = core::seconds(10);  // due further ahead than this: the anchor moves
};

class media_pacer {
public:
    explicit media_pacer(media_pacer_config cfg = {}) : cfg_(cfg) {}

    // When to publish `piece`, which is ready at `now` (never before `now`).
    core::time_point release_at(const timed_piece& piece, core::time_point now);
    // The next timed piece anchors the clock afresh.
    void reset() noexcept { anchored_ = false; }

    std::uint64_t anchors() const noexcept { return anchors_; }  // times the anchor was set or moved

private:
    media_pacer_config cfg_;
    bool anchored_ = false;
    core::time_point anchor_at_{};
    double anchor_s_ = 0;
    std::uint64_t anchors_ = 0;
};

}  // namespace pixtream::source
