#include "pixtream/source/media_clock.hpp"

#include "detect.hpp"
#include "pixtream/core/media.hpp"

#include <algorithm>
#include <cstring>
#include <map>

namespace pixtream::source {

namespace {

using bytes = std::span<const std::byte>;

constexpr std::size_t ts_packet_size = 188;
constexpr std::uint8_t ts_sync = 0x47;
constexpr std::size_t ogg_header_size = 27;
constexpr std::int64_t wrap_33 = std::int64_t{1} << 33;
constexpr double ts_hz = 90000.0;
constexpr std::size_t raw_piece_min = 188;

constexpr std::uint8_t at(bytes b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }

std::uint32_t le32(bytes b, std::size_t i) noexcept {
    return static_cast<std::uint32_t>(at(b, i)) | (static_cast<std::uint32_t>(at(b, i + 1)) << 8U) |
           (static_cast<std::uint32_t>(at(b, i + 2)) << 16U) | (static_cast<std::uint32_t>(at(b, i + 3)) << 24U);
}

std::uint32_t be32(bytes b, std::size_t i) noexcept {
    return (static_cast<std::uint32_t>(at(b, i)) << 24U) | (static_cast<std::uint32_t>(at(b, i + 1)) << 16U) |
           (static_cast<std::uint32_t>(at(b, i + 2)) << 8U) | static_cast<std::uint32_t>(at(b, i + 3));
}

bool starts_with(bytes b, const char* s, std::size_t n) noexcept {
    return b.size() >= n && std::memcmp(b.data(), s, n) == 0;
}

// A 33-bit 90 kHz counter made monotonic across its wrap.
struct unwrapper {
    std::optional<std::int64_t> last;
    std::int64_t epoch = 0;
    std::int64_t operator()(std::int64_t raw) {
        if (last) {
            if (raw + wrap_33 / 2 < *last) ++epoch;
            else if (raw > *last + wrap_33 / 2) --epoch;
        }
        last = raw;
        return raw + epoch * wrap_33;
    }
};

// How an Ogg stream's granule position becomes seconds.
struct ogg_rate {
    double per_second = 0;  // granule units (samples or frames) per second
    unsigned theora_shift = 0;
    bool theora = false;
};

// From a stream's first packet; nullopt for codecs without a known rate.
std::optional<ogg_rate> ogg_rate_of(bytes p) noexcept {
    ogg_rate r;
    if (starts_with(p, "\x01vorbis", 7) && p.size() >= 16) {
        r.per_second = le32(p, 12);
    } else if (starts_with(p, "OpusHead", 8)) {
        r.per_second = 48000;
    } else if (starts_with(p, "Speex   ", 8) && p.size() >= 40) {
        r.per_second = le32(p, 36);
    } else if (starts_with(p, "\x7F" "FLAC", 5) && p.size() >= 30) {
        r.per_second = (static_cast<std::uint32_t>(at(p, 27)) << 12U) | (static_cast<std::uint32_t>(at(p, 28)) << 4U) |
                       (static_cast<std::uint32_t>(at(p, 29)) >> 4U);
    } else if (starts_with(p, "\x80theora", 7) && p.size() >= 42) {
        const std::uint32_t num = be32(p, 22);
        const std::uint32_t den = be32(p, 26);
        if (den == 0) return std::nullopt;
        r.per_second = static_cast<double>(num) / static_cast<double>(den);
        r.theora = true;
        r.theora_shift = ((at(p, 40) & 0x03U) << 3U) | (at(p, 41) >> 5U);
    } else {
        return std::nullopt;
    }
    if (!(r.per_second > 0)) return std::nullopt;
    return r;
}

double ogg_seconds(const ogg_rate& r, std::uint64_t granule) noexcept {
    if (!r.theora) return static_cast<double>(granule) / r.per_second;
    const std::uint64_t mask = r.theora_shift >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << r.theora_shift) - 1;
    const std::uint64_t frames = (r.theora_shift >= 64 ? 0 : granule >> r.theora_shift) + (granule & mask);
    return static_cast<double>(frames) / r.per_second;
}

}  // namespace

const char* name_of(clock_source c) noexcept {
    switch (c) {
    case clock_source::none: return "none";
    case clock_source::pcr: return "PCR";
    case clock_source::pts: return "PTS";
    case clock_source::granule: return "granule position";
    case clock_source::frames: return "audio frames";
    case clock_source::bytes: return "byte rate";
    }
    return "unknown";
}

struct media_clock::impl {
    explicit impl(media_clock_config c)
        : cfg(c), kind(c.kind), audio(detail::audio_kind_of(c.kind)) {}

    media_clock_config cfg;
    container kind;
    media_clock_stats stats;
    clock_source source = clock_source::none;

    std::vector<std::byte> in;  // unparsed: in[head..]
    std::size_t head = 0;
    std::size_t detect_pos = 0;
    std::optional<core::time_point> detect_since;  // automatic: when the first bytes came
    bool redetect = false;                          // automatic: detect again at the next bytes
    bool finishing = false;

    std::vector<timed_piece> done;       // completed, not yet handed out
    std::optional<timed_piece> piece;    // being built
    std::optional<double> last_s;        // the latest unit time
    bool restart = false;                // the next timed unit follows finish(): a discontinuity

    // MPEG-TS
    bool ts_synced = false;
    std::optional<std::uint16_t> pcr_pid;
    std::optional<std::uint16_t> pts_pid;
    unwrapper pcr_unwrap, pts_unwrap;
    double ts_offset = 0;  // added to the clock's seconds (keeps the time going when PTS gives way to PCR)

    // Ogg
    bool ogg_synced = false;
    bool ogg_in_bos = false;
    std::map<std::uint32_t, ogg_rate> ogg_rates;  // of the current link
    std::optional<std::uint32_t> ogg_clock;        // its clock stream
    bool ogg_new_link = false;

    // MPEG audio / ADTS
    core::media::audio_framer audio;
    double audio_s = 0;

    // Raw
    std::uint64_t raw_bytes = 0;

    // -----------------------------------------------------------------------------------------
    bytes unparsed() const noexcept { return bytes(in).subspan(head); }

    void feed(bytes data, std::optional<core::time_point> now, std::vector<timed_piece>& out) {
        if (redetect && !data.empty()) {
            kind = container::automatic;
            redetect = false;
        }
        if (now && kind == container::automatic) {
            if (!detect_since) detect_since = *now;
            if (*now - *detect_since >= cfg.detect_timeout) kind = container::raw;  // a slow input, no container
        }
        stats.bytes += data.size();
        if (head > 0) {
            in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(head));
            head = 0;
        }
        in.insert(in.end(), data.begin(), data.end());
        parse();
        flush(out);
    }

    void finish(std::vector<timed_piece>& out) {
        finishing = true;
        parse();
        finishing = false;
        // What no unit took (a partial unit at the end) goes out with the piece before it.
        untimed(unparsed());
        head = in.size();
        flush(out);
        ts_synced = ogg_synced = false;
        audio.lose();
        ogg_in_bos = false;
        ts_offset = 0;
        pcr_pid.reset();
        pts_pid.reset();
        pcr_unwrap = {};
        pts_unwrap = {};
        ogg_rates.clear();
        ogg_clock.reset();
        audio_s = 0;
        raw_bytes = 0;
        last_s.reset();
        detect_pos = 0;
        detect_since.reset();
        redetect = cfg.kind == container::automatic;  // the next stream: look again when it comes
        restart = true;
        piece.reset();  // no time carries over into the next stream
    }

    // Moves the completed pieces and the open one to `out`.
    void flush(std::vector<timed_piece>& out) {
        for (auto& d : done) out.push_back(std::move(d));
        done.clear();
        if (piece && !piece->bytes.empty()) {
            out.push_back(std::move(*piece));
            // Bytes after this piece, before the next timed unit, belong to the same time.
            piece.reset();
            if (last_s) {
                piece.emplace();
                piece->media_s = last_s;
            }
        }
    }

    // A unit with no time of its own.
    void untimed(bytes unit) {
        if (unit.empty()) return;
        if (!piece) piece.emplace();
        piece->bytes.insert(piece->bytes.end(), unit.begin(), unit.end());
    }

    // A unit at media time `s`.
    void timed(bytes unit, double s, bool jump) {
        ++stats.timed_units;
        const bool disc = jump || restart;
        if (disc) ++stats.discontinuities;
        restart = false;
        const bool fresh = !piece || !piece->media_s || disc || s < *piece->media_s || s >= *piece->media_s + cfg.merge_s;
        if (fresh) {
            if (piece && !piece->bytes.empty()) done.push_back(std::move(*piece));
            piece.emplace();
            piece->media_s = s;
            piece->discontinuity = disc;
        }
        last_s = s;
        piece->bytes.insert(piece->bytes.end(), unit.begin(), unit.end());
    }

    void parse() {
        if (kind == container::automatic) {
            const auto b = unparsed();
            if (b.empty()) return;
            const auto d = detail::detect_container(b, detect_pos, finishing);
            detect_pos = d.from;
            if (!d.decided) return;
            kind = d.kind;
            detect_pos = 0;
            if (kind != container::raw) {
                untimed(b.first(d.offset));
                head += d.offset;
            }
            ts_synced = kind == container::mpegts;
            ogg_synced = kind == container::ogg;
            if (kind == container::mp3 || kind == container::adts)
                audio = core::media::audio_framer(detail::audio_kind_of(kind), true);
        }
        switch (kind) {
        case container::mpegts: parse_ts(); break;
        case container::ogg: parse_ogg(); break;
        case container::mp3:
        case container::adts: parse_audio(); break;
        case container::raw: parse_raw(); break;
        case container::automatic: break;
        }
    }

    // Passes the garbage before a sync point on (untimed); true when the stream was picked up there.
    bool take_sync(bytes b, detail::sync_point sync) {
        untimed(b.first(sync.offset));
        head += sync.offset;
        return sync.found;
    }

    // -----------------------------------------------------------------------------------------
    void parse_raw() {
        const auto b = unparsed();
        if (b.empty()) return;
        if (cfg.raw_bytes_per_s <= 0) {
            untimed(b);
            head += b.size();
            return;
        }
        source = clock_source::bytes;
        const auto step = std::max(raw_piece_min, static_cast<std::size_t>(cfg.raw_bytes_per_s * cfg.merge_s));
        std::size_t pos = 0;
        while (pos < b.size()) {
            const std::size_t n = std::min(step, b.size() - pos);
            timed(b.subspan(pos, n), static_cast<double>(raw_bytes) / cfg.raw_bytes_per_s, false);
            raw_bytes += n;
            pos += n;
        }
        head += b.size();
    }

    // -----------------------------------------------------------------------------------------
    void parse_ts() {
        for (;;) {
            const auto b = unparsed();
            if (!ts_synced) {
                ts_synced = take_sync(b, detail::find_ts_sync(b, finishing));
                if (!ts_synced) return;
                continue;
            }
            if (b.size() < ts_packet_size) return;
            if (at(b, 0) != ts_sync) {
                ts_synced = false;
                continue;
            }
            on_ts_packet(b.first(ts_packet_size));
            head += ts_packet_size;
        }
    }

    void on_ts_packet(bytes p) {
        const auto pid = static_cast<std::uint16_t>(((at(p, 1) & 0x1FU) << 8U) | at(p, 2));
        const bool pusi = (at(p, 1) & 0x40U) != 0;
        const unsigned afc = (at(p, 3) >> 4U) & 0x3U;
        std::size_t payload = 4;
        if ((afc & 0x2U) != 0) {
            const std::size_t len = at(p, 4);
            if (len > 183) return untimed(p);
            if (len >= 7 && (at(p, 5) & 0x10U) != 0 && (!pcr_pid || *pcr_pid == pid)) {
                const std::int64_t base = (std::int64_t{at(p, 6)} << 25) | (std::int64_t{at(p, 7)} << 17) |
                                          (std::int64_t{at(p, 8)} << 9) | (std::int64_t{at(p, 9)} << 1) | (at(p, 10) >> 7U);
                const bool flagged = (at(p, 5) & 0x80U) != 0;
                if (!pcr_pid) {
                    pcr_pid = pid;
                    // The PTS timed what came before: the PCR takes over where it left off.
                    const double s = static_cast<double>(pcr_unwrap(base)) / ts_hz;
                    ts_offset = last_s ? *last_s - s : 0.0;
                    source = clock_source::pcr;
                    return timed(p, s + ts_offset, false);
                }
                return ts_time(p, static_cast<double>(pcr_unwrap(base)) / ts_hz + ts_offset, flagged);
            }
            payload = 5 + len;
        }
        // No PCR yet: the PTS of the first PID with PES timestamps.
        if (!pcr_pid && pusi && (afc & 0x1U) != 0 && payload + 14 <= ts_packet_size && (!pts_pid || *pts_pid == pid)) {
            const bytes pes = p.subspan(payload);
            if (at(pes, 0) == 0 && at(pes, 1) == 0 && at(pes, 2) == 1 && (at(pes, 7) & 0x80U) != 0) {
                const std::int64_t pts = ((std::int64_t{at(pes, 9)} >> 1 & 0x07) << 30) | (std::int64_t{at(pes, 10)} << 22) |
                                         ((std::int64_t{at(pes, 11)} >> 1) << 15) | (std::int64_t{at(pes, 12)} << 7) |
                                         (std::int64_t{at(pes, 13)} >> 1);
                pts_pid = pid;
                source = clock_source::pts;
                return ts_time(p, static_cast<double>(pts_unwrap(pts)) / ts_hz + ts_offset, false);
            }
        }
        untimed(p);
    }

    void ts_time(bytes p, double s, bool flagged) {
        const bool jump = flagged || (last_s && (s < *last_s - 1.0 || s > *last_s + 3.0));
        timed(p, s, jump);
    }

    // -----------------------------------------------------------------------------------------
    void parse_ogg() {
        for (;;) {
            const auto b = unparsed();
            if (!ogg_synced) {
                ogg_synced = take_sync(b, detail::find_ogg_sync(b, finishing));
                if (!ogg_synced) return;
                continue;
            }
            if (b.size() < ogg_header_size) return;
            if (!starts_with(b, "OggS", 4) || at(b, 4) != 0) {
                ogg_synced = false;
                untimed(b.first(1));
                head += 1;
                continue;
            }
            const auto size = core::media::ogg_page_size(b);
            if (!size) return;
            on_ogg_page(b.first(*size), at(b, 26));
            head += *size;
        }
    }

    void on_ogg_page(bytes page, std::size_t nsegs) {
        const std::uint8_t type = at(page, 5);
        const std::uint64_t granule = static_cast<std::uint64_t>(le32(page, 6)) | (static_cast<std::uint64_t>(le32(page, 10)) << 32U);
        const std::uint32_t serial = le32(page, 14);
        if ((type & 0x02U) != 0) {
            if (!ogg_in_bos) {  // a new link: its streams and granules start afresh
                ogg_rates.clear();
                ogg_clock.reset();
                ogg_new_link = last_s.has_value();
            }
            ogg_in_bos = true;
            if (const auto r = ogg_rate_of(page.subspan(ogg_header_size + nsegs))) {
                ogg_rates[serial] = *r;
                if (!ogg_clock) ogg_clock = serial;
            }
            return untimed(page);
        }
        ogg_in_bos = false;
        if (!ogg_clock || serial != *ogg_clock || granule == ~std::uint64_t{0})
            return untimed(page);
        const double s = ogg_seconds(ogg_rates[serial], granule);
        if (s == 0 && !last_s) return untimed(page);  // header pages have granule 0
        source = clock_source::granule;
        const bool jump = ogg_new_link || (last_s && (s < *last_s - 1.0 || s > *last_s + 10.0));
        ogg_new_link = false;
        timed(page, s, jump);
    }

    // -----------------------------------------------------------------------------------------
    void parse_audio() {
        using step = core::media::audio_framer::step;
        for (;;) {
            const auto b = unparsed();
            const auto st = audio.next(b, finishing);
            kind = detail::container_of(audio.kind());
            if (st.is == step::what::more) return;
            if (st.is == step::what::unit && st.frame) {
                source = clock_source::frames;
                timed(b.first(st.size), audio_s, false);
                audio_s += static_cast<double>(st.frame->samples) / static_cast<double>(st.frame->sample_rate);
            } else {
                untimed(b.first(st.size));  // a tag, or garbage skipped on resync
            }
            head += st.size;
        }
    }
};

media_clock::media_clock(media_clock_config cfg) : impl_(std::make_unique<impl>(cfg)) {}
media_clock::~media_clock() = default;
media_clock::media_clock(media_clock&&) noexcept = default;
media_clock& media_clock::operator=(media_clock&&) noexcept = default;

void media_clock::feed(std::span<const std::byte> data, std::vector<timed_piece>& out) {
    impl_->feed(data, std::nullopt, out);
}
void media_clock::feed(std::span<const std::byte> data, core::time_point now, std::vector<timed_piece>& out) {
    impl_->feed(data, now, out);
}
void media_clock::finish(std::vector<timed_piece>& out) { impl_->finish(out); }
container media_clock::kind() const noexcept { return impl_->kind; }
clock_source media_clock::source() const noexcept { return impl_->source; }
const media_clock_stats& media_clock::stats() const noexcept { return impl_->stats; }

// ---------------------------------------------------------------------------------------------

core::time_point media_pacer::release_at(const timed_piece& piece, core::time_point now) {
    if (!piece.media_s) return now;
    const double s = *piece.media_s;
    if (!anchored_ || piece.discontinuity) {
        anchored_ = true;
        anchor_at_ = now;
        anchor_s_ = s;
        ++anchors_;
        return now;
    }
    const auto due = anchor_at_ + std::chrono::round<core::duration>(std::chrono::duration<double>(s - anchor_s_));
    if (due < now - cfg_.max_late || due > now + cfg_.max_early) {
        anchor_at_ = now;
        anchor_s_ = s;
        ++anchors_;
        return now;
    }
    return std::max(due, now);
}

}  // namespace pixtream::source
