#include "pixtream/core/media.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace pixtream::core::media {

namespace {

constexpr std::uint8_t at(bytes b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }

// kbit/s by [MPEG-1: 0, MPEG-2/2.5: 1][layer I, II, III][index].
constexpr std::uint16_t bitrates[2][3][15] = {
    {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
     {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
     {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}},
    {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}},
};

constexpr std::array<std::uint32_t, 13> adts_rates{96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                                   22050, 16000, 12000, 11025, 8000,  7350};

bool starts_with(bytes b, std::size_t at_offset, const char* s, std::size_t n) noexcept {
    return b.size() >= at_offset + n && std::memcmp(b.data() + at_offset, s, n) == 0;
}

}  // namespace

std::optional<audio_frame> mpeg_audio_frame(bytes b) noexcept {
    if (b.size() < 4 || at(b, 0) != 0xFF || (at(b, 1) & 0xE0U) != 0xE0U) return std::nullopt;
    const unsigned version = (at(b, 1) >> 3U) & 3U;  // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
    const unsigned layer_bits = (at(b, 1) >> 1U) & 3U;  // 1: III, 2: II, 3: I, 0: reserved (ADTS)
    const unsigned bitrate_index = at(b, 2) >> 4U;
    const unsigned rate_index = (at(b, 2) >> 2U) & 3U;
    const unsigned padding = (at(b, 2) >> 1U) & 1U;
    if (version == 1 || layer_bits == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3) return std::nullopt;
    if ((at(b, 3) & 3U) == 2) return std::nullopt;  // reserved emphasis
    const unsigned layer = 4 - layer_bits;           // 1, 2 or 3
    static constexpr std::uint32_t base_rates[3] = {44100, 48000, 32000};
    const std::uint32_t rate = base_rates[rate_index] >> (version == 3 ? 0U : version == 2 ? 1U : 2U);
    const std::uint32_t kbps = bitrates[version == 3 ? 0 : 1][layer - 1][bitrate_index];
    audio_frame f;
    f.kind = audio_kind::mpeg;
    f.sample_rate = rate;
    if (layer == 1) {
        f.samples = 384;
        f.size = (12U * kbps * 1000U / rate + padding) * 4U;
    } else if (layer == 2 || version == 3) {
        f.samples = 1152;
        f.size = 144U * kbps * 1000U / rate + padding;
    } else {
        f.samples = 576;
        f.size = 72U * kbps * 1000U / rate + padding;
    }
    if (f.size < 4) return std::nullopt;
    f.family = (static_cast<std::uint32_t>(at(b, 1)) & 0xFEU) << 8U | rate_index;
    return f;
}

std::optional<audio_frame> adts_frame(bytes b) noexcept {
    if (b.size() < 7 || at(b, 0) != 0xFF || (at(b, 1) & 0xF6U) != 0xF0U) return std::nullopt;
    const unsigned rate_index = (at(b, 2) >> 2U) & 0xFU;
    if (rate_index >= adts_rates.size()) return std::nullopt;
    const std::size_t length = ((std::size_t{at(b, 3)} & 0x03U) << 11U) | (std::size_t{at(b, 4)} << 3U) | (at(b, 5) >> 5U);
    const bool crc = (at(b, 1) & 0x01U) == 0;
    if (length < (crc ? 9U : 7U)) return std::nullopt;
    audio_frame f;
    f.kind = audio_kind::adts;
    f.size = length;
    f.samples = 1024U * ((at(b, 6) & 0x03U) + 1U);
    f.sample_rate = adts_rates[rate_index];
    f.family = (static_cast<std::uint32_t>(at(b, 1)) << 8U) | (at(b, 2) & 0xFCU);  // version, profile, rate
    return f;
}

std::optional<audio_frame> audio_frame_at(audio_kind kind, bytes b) noexcept {
    return kind == audio_kind::mpeg ? mpeg_audio_frame(b) : adts_frame(b);
}

std::optional<std::size_t> ogg_page_size(bytes b) noexcept {
    if (b.size() < 27) return std::nullopt;
    const std::size_t nsegs = at(b, 26);
    if (b.size() < 27 + nsegs) return std::nullopt;
    std::size_t size = 27 + nsegs;
    for (std::size_t i = 0; i < nsegs; ++i) size += at(b, 27 + i);
    if (b.size() < size) return std::nullopt;
    return size;
}

std::optional<std::size_t> id3v2_size(bytes b) noexcept {
    if (b.size() < 10 || !starts_with(b, 0, "ID3", 3) || at(b, 3) == 0xFF || at(b, 4) == 0xFF) return std::nullopt;
    std::size_t size = 0;
    for (std::size_t i = 6; i < 10; ++i) {
        if ((at(b, i) & 0x80U) != 0) return std::nullopt;  // sizes are "syncsafe": 7 bits a byte
        size = (size << 7U) | at(b, i);
    }
    const std::size_t total = 10 + size + ((at(b, 5) & 0x10U) != 0 ? 10 : 0);
    if (total > max_id3v2_size) return std::nullopt;
    return total;
}

frame_run audio_frames_at(bytes b, std::size_t frames, bool at_end) noexcept {
    frame_run r;
    std::optional<audio_frame> first = mpeg_audio_frame(b);
    if (!first) first = adts_frame(b);
    if (!first) {
        // Too short to say: a header needs up to 7 bytes.
        const bool prefix = !b.empty() && at(b, 0) == 0xFF && (b.size() < 2 || (at(b, 1) & 0xE0U) == 0xE0U) && b.size() < 7;
        r.answer = prefix && !at_end ? run_answer::more : run_answer::no;
        return r;
    }
    r.kind = first->kind;
    std::size_t pos = 0;
    for (std::size_t n = 0; n < frames; ++n) {
        const auto f = audio_frame_at(first->kind, b.subspan(pos));
        if (!f) {
            const bool short_header = b.size() - pos < (first->kind == audio_kind::adts ? 7U : 4U);
            if (short_header && at_end && n > 0) r.answer = run_answer::yes;
            else r.answer = short_header && !at_end ? run_answer::more : run_answer::no;
            return r;
        }
        if (f->family != first->family) {
            r.answer = run_answer::no;
            return r;
        }
        if (pos + f->size > b.size()) {
            r.answer = at_end ? run_answer::no : run_answer::more;
            return r;
        }
        pos += f->size;
        if (pos == b.size() && at_end) break;
    }
    r.answer = run_answer::yes;
    return r;
}

audio_unit next_audio_unit(audio_kind kind, bytes b, bool at_end) noexcept {
    audio_unit u;
    if (b.empty()) {
        u.is = at_end ? audio_unit::what::lost : audio_unit::what::more;
        return u;
    }
    if (starts_with(b, 0, "ID3", std::min<std::size_t>(3, b.size())) && b.size() < 10) {
        u.is = at_end ? audio_unit::what::lost : audio_unit::what::more;
        return u;
    }
    if (const auto tag = id3v2_size(b)) {
        u.size = *tag;
        u.is = b.size() >= *tag ? audio_unit::what::tag : at_end ? audio_unit::what::lost : audio_unit::what::more;
        return u;
    }
    if (kind == audio_kind::mpeg && starts_with(b, 0, "TAG", std::min<std::size_t>(3, b.size()))) {
        u.size = 128;
        u.is = b.size() >= 128 ? audio_unit::what::tag : at_end ? audio_unit::what::lost : audio_unit::what::more;
        return u;
    }
    const std::size_t header = kind == audio_kind::adts ? 7 : 4;
    if (b.size() < header) {
        const bool prefix = at(b, 0) == 0xFF && (b.size() < 2 || (at(b, 1) & 0xE0U) == 0xE0U);
        u.is = prefix && !at_end ? audio_unit::what::more : audio_unit::what::lost;
        return u;
    }
    const auto f = audio_frame_at(kind, b);
    if (!f) return u;
    u.frame = *f;
    u.size = f->size;
    u.is = b.size() >= f->size ? audio_unit::what::frame : at_end ? audio_unit::what::lost : audio_unit::what::more;
    return u;
}

audio_sync find_audio_sync(bytes b, std::size_t frames, bool at_end) noexcept {
    audio_sync s;
    for (std::size_t p = 0; p < b.size(); ++p) {
        const bytes rest = b.subspan(p);
        if (starts_with(rest, 0, "ID3", std::min<std::size_t>(3, rest.size()))) {
            if (rest.size() < 10 && !at_end) {
                s.answer = run_answer::more;
                s.offset = p;
                return s;
            }
            if (const auto tag = id3v2_size(rest)) {
                // The frames after the tag say which kind it is (MPEG audio unless ADTS follows).
                if (rest.size() < *tag + 7 && !at_end) {
                    s.answer = run_answer::more;
                    s.offset = p;
                    return s;
                }
                if (rest.size() < *tag) continue;  // cut short by the end of the input: not a tag
                const auto after = *tag < rest.size() ? audio_frames_at(rest.subspan(*tag), frames, at_end) : frame_run{};
                s.answer = run_answer::yes;
                s.offset = p;
                s.kind = after.answer == run_answer::yes ? after.kind : audio_kind::mpeg;
                return s;
            }
        }
        const auto run = audio_frames_at(rest, frames, at_end);
        if (run.answer == run_answer::no) continue;
        s.answer = run.answer;
        s.offset = p;
        s.kind = run.kind;
        return s;
    }
    s.offset = b.size();
    return s;
}

audio_framer::step audio_framer::next(bytes b, bool at_end) noexcept {
    step s;
    for (;;) {
        if (!synced_) {
            const auto sync = find_audio_sync(b, 3, at_end);
            if (sync.offset > 0) {
                s.is = step::what::skip;
                s.size = sync.offset;
                return s;
            }
            if (sync.answer != run_answer::yes) return s;  // more (nothing at all: b is empty)
            synced_ = true;
            just_synced_ = true;
            if (at(b, 0) == 0xFF) kind_ = sync.kind;
        }
        const auto u = next_audio_unit(kind_, b, at_end);
        if (u.is == audio_unit::what::more || (u.is == audio_unit::what::lost && b.empty())) return s;
        if (u.is == audio_unit::what::lost) {
            synced_ = false;
            s.resynced = true;
            if (just_synced_) {
                just_synced_ = false;
                s.is = step::what::skip;
                s.size = 1;
                return s;
            }
            continue;
        }
        just_synced_ = false;
        s.is = step::what::unit;
        s.size = u.size;
        if (u.is == audio_unit::what::frame) s.frame = u.frame;
        return s;
    }
}

const char* sniff_media_type(bytes first) noexcept {
    if (!first.empty() && at(first, 0) == 0x47 && (first.size() <= 188 || at(first, 188) == 0x47)) return "video/mp2t";
    if (starts_with(first, 0, "OggS", 4)) {
        // The beginning-of-stream pages come first: is one of them Theora's?
        std::size_t o = 0;
        while (first.size() >= o + 27 && starts_with(first, o, "OggS", 4) && (at(first, o + 5) & 0x02U) != 0) {
            // (A page cut short by the end of `first` is still looked into.)
            if (starts_with(first, o + 27 + at(first, o + 26), "\x80theora", 7)) return "video/ogg";
            const auto size = ogg_page_size(first.subspan(o));
            if (!size) break;
            o += *size;
        }
        return "audio/ogg";
    }
    bytes frames = first;
    if (const auto tag = id3v2_size(first)) {
        if (*tag >= first.size()) return "audio/mpeg";
        frames = first.subspan(*tag);
    }
    if (mpeg_audio_frame(frames)) return "audio/mpeg";
    if (adts_frame(frames)) return "audio/aac";
    if (frames.size() != first.size()) return "audio/mpeg";
    return "application/octet-stream";
}

}  // namespace pixtream::core::media
