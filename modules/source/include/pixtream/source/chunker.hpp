#pragma once
// Cuts the live input byte stream into chunk payloads (pure: no I/O, no clock; time is a parameter).
//
// Chunks are aligned to container boundaries (MPEG-TS 188-byte packets, Ogg pages, audio frames), bounded by bytes
// and by time, and flagged so that a player joining at any random-access chunk, after receiving the
// header chunk it refers to, gets a stream it decodes cleanly:
//
// - MPEG-TS: the header chunk holds the PAT and the PMTs it lists (plus SI packets just before them);
//   one is cut at the first PAT and again when the PAT or a PMT changes (from the PAT before the
//   changed PMT if that is still pending, else from the next PAT; no chunk is random access in
//   between, since its header would be out of date). A chunk is random access when it starts with
//   a PES start of the "key" PID: the first video PID of the PMTs (keyframes: random_access_indicator,
//   or an IDR/SPS, sequence header or IRAP in the packet when a muxer does not set it), or the first
//   audio PID for audio-only streams (every PES start).
// - Ogg: the header chunk holds a link's BOS pages and the pages carrying the header packets of its
//   streams (Vorbis and Theora 3, Opus 2, Speex and FLAC from their first packet; other codecs: the
//   pages with granule position 0); a new chained link (a new BOS) gives a new header chunk. A chunk
//   is random access when its first page does not start with a continued packet and, if the link has
//   a Theora stream, is a Theora page starting with a keyframe.
// - MP3 (MPEG audio) and ADTS (AAC): every chunk starts on a frame (or an ID3 tag) and is random
//   access; no header chunk.
// - raw: cut at max_bytes and by time only; every chunk is random access and there are no headers.
//
// Header chunks are part of the stream (the concatenation of all payloads is the input minus the
// garbage skipped on resync), so a player that is already playing simply plays them in order.
#include "pixtream/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace pixtream::source {

enum class container { automatic, mpegts, ogg, mp3, adts, raw };

// "automatic", "mpegts", "ogg", "mp3", "adts" or "raw".
const char* name_of(container c) noexcept;

struct chunker_config {
    // automatic: MPEG-TS (0x47 every 188 bytes), Ogg ("OggS"), MPEG audio or ADTS (3 frames in a row,
    // maybe after an ID3v2 tag) found within the first 64 KiB, else raw.
    container kind = container::automatic;
    // Largest payload, except that a single container unit (an Ogg page up to 65,307 bytes) is never
    // split, and header chunks may grow to wire::max_chunk_payload so that they stay whole.
    std::size_t max_bytes = 64 * 1024;
    // A random-access chunk is cut early, right before the next random-access point, only once it
    // holds this much; any other chunk is cut before the next random-access point whatever its size.
    std::size_t min_bytes = 4 * 1024;
    // A chunk is cut at most this long after its first unit was complete (see tick()).
    core::duration max_duration = core::milliseconds(500);
};

// One chunk payload as cut; the source assigns the id, timestamp and header_ref and signs it.
struct cut_chunk {
    std::vector<std::byte> payload;
    std::uint8_t flags = 0;    // wire::chunk::flag_random_access and/or flag_header
    bool refs_header = false;  // a header chunk was emitted before and players need the latest one first

    bool random_access() const noexcept;
    bool is_header() const noexcept;
};

struct chunker_stats {
    std::uint64_t bytes_in = 0;              // bytes fed
    std::uint64_t bytes_out = 0;             // payload bytes of the chunks cut
    std::uint64_t bytes_skipped_resync = 0;  // garbage and partial units dropped
    std::uint64_t resyncs = 0;               // times the container sync was lost (or not found at once)
    std::uint64_t chunks = 0;
    std::uint64_t header_chunks = 0;
    std::uint64_t random_access_chunks = 0;
    std::uint64_t time_cuts = 0;  // chunks cut by max_duration rather than by size or alignment
};

class chunker {
public:
    // Throws std::invalid_argument when max_bytes < 188 or max_duration <= 0.
    explicit chunker(chunker_config cfg = {});
    ~chunker();
    chunker(chunker&&) noexcept;
    chunker& operator=(chunker&&) noexcept;
    chunker(const chunker&) = delete;
    chunker& operator=(const chunker&) = delete;

    // Consumes input bytes received at `now`; appends the chunks that are complete to `out`.
    // A chunk whose time is up at `now` is cut first (as tick(now) would).
    void feed(std::span<const std::byte> data, core::time_point now, std::vector<cut_chunk>& out);
    // Cuts the pending chunk if it is due (see next_deadline()).
    void tick(core::time_point now, std::vector<cut_chunk>& out);
    // The input ended (or broke: feeding may go on afterwards, as after a reconnect): cuts every
    // whole unit still pending, drops a trailing partial unit (counted as skipped) and resynchronises
    // on the next bytes fed (in automatic mode it detects their container afresh). Headers already
    // seen are remembered.
    void finish(std::vector<cut_chunk>& out);
    // When tick() will next cut something; nullopt while no whole unit is pending.
    std::optional<core::time_point> next_deadline() const noexcept;

    // The configured container, or the detected one; `automatic` until detection has decided.
    container kind() const noexcept;
    const chunker_stats& stats() const noexcept;
    const chunker_config& config() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace pixtream::source
