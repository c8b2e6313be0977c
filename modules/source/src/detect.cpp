#include "detect.hpp"

#include "pixtream/core/media.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace pixtream::source::detail {

namespace {

constexpr std::size_t ts_packet_size = 188;
constexpr std::uint8_t ts_sync = 0x47;
constexpr std::size_t max_detect_tag = 1024 * 1024;  // a larger ID3v2 tag is not waited for

constexpr std::uint8_t at(std::span<const std::byte> b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }

}  // namespace

sync_point find_ts_sync(std::span<const std::byte> b, bool at_end) noexcept {
    constexpr std::size_t confirm = 3;
    for (std::size_t p = 0; p < b.size(); ++p) {
        if (at(b, p) != ts_sync) continue;
        bool ok = true;
        bool sure = true;
        for (std::size_t k = 1; k < confirm && ok; ++k) {
            const std::size_t q = p + k * ts_packet_size;
            if (q >= b.size()) sure = false;
            else ok = at(b, q) == ts_sync;
            if (!sure) break;
        }
        if (!ok) continue;
        // Not sure yet: keep the candidate until it can be confirmed, or take it at the end of input.
        if (!sure) return {at_end && ts_packet_size <= b.size() - p, p};
        return {true, p};
    }
    return {false, b.size()};
}

sync_point find_ogg_sync(std::span<const std::byte> b, bool at_end) noexcept {
    static constexpr std::array<std::uint8_t, 5> capture{'O', 'g', 'g', 'S', 0};
    for (std::size_t p = 0; p < b.size(); ++p) {
        std::size_t m = 0;
        while (m < capture.size() && p + m < b.size() && at(b, p + m) == capture[m]) ++m;
        if (m == capture.size()) return {true, p};
        if (p + m == b.size() && !at_end) return {false, p};  // a prefix of the pattern: wait for more
    }
    return {false, b.size()};
}

detection detect_container(std::span<const std::byte> b, std::size_t from, bool at_end) noexcept {
    detection d;
    d.from = from;
    const std::size_t limit = std::min(b.size(), detect_window);
    for (std::size_t p = from; p < limit; d.from = ++p) {
        // MPEG-TS: 0x47 at p, p+188, ... (5 packets).
        bool ts_possible = at(b, p) == ts_sync;
        bool ts_sure = ts_possible;
        for (std::size_t k = 1; ts_possible && k < detect_ts_packets; ++k) {
            const std::size_t q = p + k * ts_packet_size;
            if (q >= b.size()) {
                ts_sure = false;
                break;
            }
            if (at(b, q) != ts_sync) ts_possible = ts_sure = false;
        }
        if (ts_possible && !ts_sure) {
            // Not enough bytes to be sure; at the end of input two packets will do.
            if (!at_end) return d;
            ts_sure = p + ts_packet_size < b.size();
        }
        if (ts_sure) {
            d.decided = true;
            d.kind = container::mpegts;
            d.offset = p;
            return d;
        }
        // Ogg: "OggS" and version 0.
        static constexpr std::array<std::uint8_t, 5> capture{'O', 'g', 'g', 'S', 0};
        std::size_t m = 0;
        while (m < capture.size() && p + m < b.size() && at(b, p + m) == capture[m]) ++m;
        if (m == capture.size()) {
            d.decided = true;
            d.kind = container::ogg;
            d.offset = p;
            return d;
        }
        if (p + m == b.size() && !at_end) return d;  // a prefix of the capture pattern: wait
        // MPEG audio or ADTS: frames in a row, maybe after an ID3v2 tag.
        const auto rest = b.subspan(p);
        std::size_t tag = 0;
        if (at(b, p) == 'I') {
            static constexpr std::array<std::uint8_t, 3> id3{'I', 'D', '3'};
            std::size_t n = 0;
            while (n < id3.size() && n < rest.size() && at(rest, n) == id3[n]) ++n;
            if (n < id3.size() && n == rest.size() && !at_end) return d;
            if (n < id3.size()) continue;
            if (rest.size() < 10 && !at_end) return d;
            const auto size = core::media::id3v2_size(rest);
            if (!size || *size > max_detect_tag) continue;
            if (rest.size() <= *size) {
                if (!at_end) return d;
                continue;
            }
            tag = *size;
        } else if (at(b, p) != 0xFF) {
            continue;
        }
        const auto run = core::media::audio_frames_at(rest.subspan(tag), detect_audio_frames, at_end);
        if (run.answer == core::media::run_answer::more) return d;
        if (run.answer == core::media::run_answer::yes) {
            d.decided = true;
            d.kind = container_of(run.kind);
            d.offset = p;
            return d;
        }
    }
    if (b.size() >= detect_window || at_end) {
        d.decided = true;
        d.kind = container::raw;
        d.from = 0;
    }
    return d;
}

}  // namespace pixtream::source::detail
