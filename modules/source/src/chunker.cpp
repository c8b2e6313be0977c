#include "pixtream/source/chunker.hpp"

#include "detect.hpp"
#include "pixtream/core/media.hpp"

#include "pixtream/wire/limits.hpp"
#include "pixtream/wire/messages.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string_view>

namespace pixtream::source {

namespace {

using bytes = std::span<const std::byte>;

constexpr std::size_t ts_packet_size = 188;
constexpr std::uint8_t ts_sync = 0x47;
constexpr std::size_t ogg_header_size = 27;
constexpr std::size_t max_psi_section = 1024;      // PAT/PMT sections are at most 1,024 bytes
constexpr std::size_t feed_step = 64 * 1024;       // input is buffered at most this much at a time
constexpr std::uint16_t no_pid = 0xFFFF;

constexpr std::uint8_t at(bytes b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }

// CRC-32, polynomial 0x04C11DB7, most significant bit first, no reflection and no final xor:
// MPEG-2 PSI sections use it with the initial value ~0, Ogg pages with 0.
constexpr std::array<std::uint32_t, 256> crc_table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i << 24U;
        for (int k = 0; k < 8; ++k) c = (c & 0x80000000U) != 0 ? (c << 1U) ^ 0x04C11DB7U : c << 1U;
        t[i] = c;
    }
    return t;
}();

std::uint32_t crc32_msb(std::uint32_t crc, bytes data) noexcept {
    for (auto b : data) crc = (crc << 8U) ^ crc_table[((crc >> 24U) ^ std::to_integer<std::uint32_t>(b)) & 0xFFU];
    return crc;
}

// ---------------------------------------------------------------------------------------------
// MPEG-TS

struct ts_packet {
    std::uint16_t pid = 0;
    bool pusi = false;  // payload_unit_start_indicator
    bool rai = false;   // adaptation field random_access_indicator
    bytes payload;
};

ts_packet parse_ts_packet(bytes p) noexcept {
    ts_packet out;
    out.pid = static_cast<std::uint16_t>(((at(p, 1) & 0x1FU) << 8U) | at(p, 2));
    out.pusi = (at(p, 1) & 0x40U) != 0;
    const unsigned afc = (at(p, 3) >> 4U) & 0x3U;
    std::size_t off = 4;
    if ((afc & 0x2U) != 0) {
        const std::size_t len = at(p, 4);
        if (len > 183) return out;  // malformed adaptation field: no payload
        if (len > 0) out.rai = (at(p, 5) & 0x40U) != 0;
        off = 5 + len;
    }
    if ((afc & 0x1U) != 0 && off < ts_packet_size) out.payload = p.subspan(off);
    return out;
}

enum class es_kind { other, video, audio };

es_kind classify_stream(std::uint8_t stream_type, bytes descriptors) noexcept {
    switch (stream_type) {
    case 0x01: case 0x02: case 0x10: case 0x1B: case 0x24: case 0x42: case 0xD1: case 0xEA:
        return es_kind::video;
    case 0x03: case 0x04: case 0x0F: case 0x11: case 0x1C: case 0x81: case 0x87:
        return es_kind::audio;
    case 0x06: {
        // Private PES: audio when a descriptor says so (AC-3, E-AC-3, DTS, AAC, or an Opus registration).
        std::size_t i = 0;
        while (i + 2 <= descriptors.size()) {
            const std::uint8_t tag = at(descriptors, i);
            const std::size_t len = at(descriptors, i + 1);
            if (i + 2 + len > descriptors.size()) break;
            if (tag == 0x6A || tag == 0x7A || tag == 0x7B || tag == 0x7C) return es_kind::audio;
            if (tag == 0x05 && len >= 4) {
                const auto id = descriptors.subspan(i + 2, 4);
                if (std::memcmp(id.data(), "Opus", 4) == 0 || std::memcmp(id.data(), "AC-3", 4) == 0 ||
                    std::memcmp(id.data(), "EAC3", 4) == 0)
                    return es_kind::audio;
            }
            i += 2 + len;
        }
        return es_kind::other;
    }
    default:
        return es_kind::other;
    }
}

// For muxers that do not set random_access_indicator: does this first packet of a video PES start a
// keyframe? (H.264 IDR or SPS, HEVC IRAP or parameter sets, MPEG-1/2 sequence header.)
bool looks_like_keyframe(std::uint8_t stream_type, bytes payload) noexcept {
    if (payload.size() < 9 || at(payload, 0) != 0 || at(payload, 1) != 0 || at(payload, 2) != 1) return false;
    const std::size_t es = 9 + std::size_t{at(payload, 8)};
    for (std::size_t i = es; i + 3 < payload.size(); ++i) {
        if (at(payload, i) != 0 || at(payload, i + 1) != 0 || at(payload, i + 2) != 1) continue;
        const std::uint8_t code = at(payload, i + 3);
        switch (stream_type) {
        case 0x1B: {
            const unsigned nal = code & 0x1FU;
            if (nal == 5 || nal == 7) return true;
            break;
        }
        case 0x24: {
            const unsigned nal = (code >> 1U) & 0x3FU;
            if ((nal >= 16 && nal <= 21) || nal == 32 || nal == 33) return true;
            break;
        }
        case 0x01:
        case 0x02:
            if (code == 0xB3) return true;
            break;
        default:
            return false;
        }
    }
    return false;
}

// Reassembles the PSI sections of one PID; calls f(section) for each complete one with a valid CRC.
class section_assembler {
public:
    template <class F>
    void push(bool pusi, bytes payload, F&& f) {
        if (pusi) {
            if (payload.empty()) return reset();
            const std::size_t pointer = at(payload, 0);
            if (1 + pointer > payload.size()) return reset();
            if (active_) {
                append(payload.subspan(1, pointer));
                complete(f);
            }
            buf_.clear();
            active_ = true;
            append(payload.subspan(1 + pointer));
            complete(f);
        } else if (active_) {
            append(payload);
            complete(f);
        }
    }

private:
    void reset() {
        active_ = false;
        buf_.clear();
    }
    void append(bytes b) {
        if (!active_) return;
        if (buf_.size() + b.size() > max_psi_section + ts_packet_size) return reset();
        buf_.insert(buf_.end(), b.begin(), b.end());
    }
    template <class F>
    void complete(F& f) {
        if (!active_ || buf_.size() < 3) return;
        if (at(buf_, 0) == 0xFF) return reset();  // stuffing
        const std::size_t total = 3 + (((at(buf_, 1) & 0x0FU) << 8U) | at(buf_, 2));
        if (total > max_psi_section || total < 3 + 9) return reset();
        if (buf_.size() < total) return;
        const bytes section(buf_.data(), total);
        if (crc32_msb(0xFFFFFFFFU, section) == 0) f(section);
        reset();
    }

    std::vector<std::byte> buf_;
    bool active_ = false;
};

// ---------------------------------------------------------------------------------------------
// Ogg

struct ogg_page {
    std::uint8_t header_type = 0;
    std::uint64_t granule = 0;
    std::uint32_t serial = 0;
    bytes segments;  // lacing values
    bytes body;

    bool continued() const noexcept { return (header_type & 0x01U) != 0; }
    bool bos() const noexcept { return (header_type & 0x02U) != 0; }
    // Packets that end on this page.
    std::size_t packets_completed() const noexcept {
        return static_cast<std::size_t>(std::count_if(segments.begin(), segments.end(),
                                                      [](std::byte b) { return std::to_integer<unsigned>(b) < 255; }));
    }
    // The first packet's bytes on this page (all of it when it ends here).
    bytes first_packet() const noexcept {
        std::size_t n = 0;
        for (auto s : segments) {
            n += std::to_integer<std::size_t>(s);
            if (std::to_integer<unsigned>(s) < 255) break;
        }
        return body.first(std::min(n, body.size()));
    }
};

std::uint32_t le32(bytes b, std::size_t i) noexcept {
    return static_cast<std::uint32_t>(at(b, i)) | (static_cast<std::uint32_t>(at(b, i + 1)) << 8U) |
           (static_cast<std::uint32_t>(at(b, i + 2)) << 16U) | (static_cast<std::uint32_t>(at(b, i + 3)) << 24U);
}

bool starts_with(bytes b, std::string_view s) noexcept {
    return b.size() >= s.size() && std::memcmp(b.data(), s.data(), s.size()) == 0;
}

// Number of header packets a logical stream starts with, from its first packet; 0 when unknown.
std::size_t codec_header_packets(bytes first) noexcept {
    if (starts_with(first, "\x01vorbis")) return 3;
    if (starts_with(first, "\x80theora")) return 3;
    if (starts_with(first, "OpusHead")) return 2;
    if (starts_with(first, "Speex   ") && first.size() >= 72) return 2 + std::min<std::size_t>(le32(first, 68), 16);
    if (starts_with(first, "\x7F" "FLAC") && first.size() >= 9) {
        const std::size_t n = (std::size_t{at(first, 7)} << 8U) | at(first, 8);
        return n == 0 ? 0 : 1 + n;
    }
    return 0;
}

// What the container parser says about one unit.
enum class unit_role {
    normal,
    header_start,  // starts a header chunk (cut before it)
    header_part,   // continues the header chunk
    header_last,   // completes the header chunk (cut after it)
};

}  // namespace

bool cut_chunk::random_access() const noexcept { return (flags & wire::chunk::flag_random_access) != 0; }
bool cut_chunk::is_header() const noexcept { return (flags & wire::chunk::flag_header) != 0; }

const char* name_of(container c) noexcept {
    switch (c) {
    case container::automatic: return "automatic";
    case container::mpegts: return "mpegts";
    case container::ogg: return "ogg";
    case container::mp3: return "mp3";
    case container::adts: return "adts";
    case container::raw: return "raw";
    }
    return "unknown";
}

struct chunker::impl {
    explicit impl(chunker_config c)
        : cfg(c), kind(c.kind), mpa(detail::audio_kind_of(c.kind)) {}

    chunker_config cfg;
    container kind;
    chunker_stats stats;

    // Unparsed input: in[head..].
    std::vector<std::byte> in;
    std::size_t head = 0;
    bool finishing = false;
    bool redetect = false;                          // automatic mode: detect again at the next bytes
    std::optional<core::time_point> detect_since;  // automatic mode: first byte seen
    std::size_t detect_pos = 0;                     // automatic mode: next offset to examine
    core::time_point last_now{};                    // the latest time passed in

    // The chunk being built.
    std::vector<std::byte> pending;
    bool pending_ra = false;
    bool pending_header = false;   // collecting a header chunk
    bool pending_only_si = true;   // MPEG-TS: pending holds only PSI/SI and null packets
    core::time_point pending_since{};
    bool header_emitted = false;

    // MPEG-TS state.
    struct ts_state {
        bool synced = false;
        std::map<std::uint16_t, section_assembler> assemblers;  // PID 0 and the PMT PIDs
        std::vector<std::byte> pat;                               // latest PAT section
        std::vector<std::uint16_t> pmt_pids;                      // from the latest PAT, in order
        std::map<std::uint16_t, std::vector<std::byte>> pmts;     // latest PMT section per PID
        std::vector<std::byte> header_pat;                        // content of the emitted header
        std::map<std::uint16_t, std::vector<std::byte>> header_pmts;
        bool header_wanted = true;
        bool collecting = false;
        bool collected_pat = false;
        std::set<std::uint16_t> collected_pmts;
        std::optional<std::size_t> pat_offset;       // where the latest PAT starts in `pending`
        std::set<std::uint16_t> pmts_since_pat;      // PMTs completed since that PAT
        std::uint16_t key_pid = no_pid;
        es_kind key_kind = es_kind::other;
        std::uint8_t key_stream_type = 0;
    } ts;

    // Ogg state.
    struct ogg_stream {
        std::uint32_t serial = 0;
        std::size_t expected = 0;  // header packets; 0: unknown (pages with granule 0 are headers)
        std::size_t done = 0;
        bool complete = false;
        bool theora = false;       // video: only its keyframes are random-access points
    };
    struct ogg_state {
        bool synced = false;
        bool in_bos_group = false;
        bool collecting = false;
        std::vector<ogg_stream> link;
    } ogg;

    // MPEG audio / ADTS state.
    core::media::audio_framer mpa;

    bool is_audio() const noexcept { return kind == container::mp3 || kind == container::adts; }
    core::media::audio_kind audio_kind() const noexcept {
        return detail::audio_kind_of(kind);
    }

    // -----------------------------------------------------------------------------------------
    bytes unparsed() const noexcept { return bytes(in).subspan(head); }

    void consume(std::size_t n) noexcept { head += n; }

    void skip(std::size_t n) noexcept {
        stats.bytes_skipped_resync += n;
        head += n;
    }

    void compact() {
        if (head == 0) return;
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
    }

    void feed(bytes data, core::time_point now, std::vector<cut_chunk>& out) {
        if (redetect && !data.empty()) {
            kind = container::automatic;
            detect_pos = 0;
            redetect = false;
        }
        tick(now, out);
        stats.bytes_in += data.size();
        while (!data.empty()) {
            const std::size_t n = std::min(data.size(), feed_step);
            compact();
            in.insert(in.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
            data = data.subspan(n);
            if (kind == container::automatic && !detect_since) detect_since = now;
            parse(now, out);
        }
        compact();
    }

    void tick(core::time_point now, std::vector<cut_chunk>& out) {
        last_now = std::max(last_now, now);
        if (kind == container::automatic) {
            // A slow stream that shows no container within max_duration is raw.
            if (detect_since && now >= *detect_since + cfg.max_duration) {
                kind = container::raw;
                parse(now, out);
            }
            return;
        }
        const auto deadline = next_deadline();
        if (!deadline || now < *deadline) return;
        ++stats.time_cuts;
        if (pending_header) {
            // (Only MPEG-TS gets here: Ogg header chunks have no deadline.) The header chunk is
            // incomplete, a PMT is missing: cut it as an ordinary chunk and try again at the next PAT.
            ts.collecting = false;
            cut(false, out);
            return;
        }
        cut(false, out);
    }

    std::optional<core::time_point> next_deadline() const noexcept {
        if (kind == container::automatic) {
            if (detect_since) return *detect_since + cfg.max_duration;
            return std::nullopt;
        }
        if (pending.empty()) return std::nullopt;
        // An Ogg header chunk is never cut by time: a slow live input would split its header pages
        // and late joiners could not decode. Its first data page ends it (see parse_ogg).
        if (pending_header && kind == container::ogg) return std::nullopt;
        return pending_since + cfg.max_duration;
    }

    void finish(std::vector<cut_chunk>& out) {
        finishing = true;
        parse(last_now, out);
        finishing = false;
        skip(in.size() - head);
        compact();
        if (!pending.empty()) {
            const bool as_header = pending_header && kind == container::ogg;
            cut(as_header, out);
        }
        ts.synced = false;
        ts.collecting = false;
        ts.assemblers.clear();
        ogg.synced = false;
        ogg.collecting = false;
        ogg.in_bos_group = false;
        mpa.lose();
        detect_since.reset();
        // The next stream (a broadcaster reconnecting, say) may hold another container: look again
        // when it comes (kind() still tells the last one until then).
        redetect = cfg.kind == container::automatic;
    }

    // -----------------------------------------------------------------------------------------
    void parse(core::time_point now, std::vector<cut_chunk>& out) {
        if (kind == container::automatic && !detect()) return;
        switch (kind) {
        case container::mpegts: return parse_ts(now, out);
        case container::ogg: return parse_ogg(now, out);
        case container::mp3:
        case container::adts: return parse_audio(now, out);
        case container::raw: return parse_raw(now, out);
        case container::automatic: return;
        }
    }

    // Automatic mode: looks for a container at increasing offsets of the buffered input (detect.hpp);
    // the decision depends only on the bytes (never on how they were split). True once decided.
    bool detect() {
        const bytes b = unparsed();
        if (b.empty()) return false;
        const auto d = detail::detect_container(b, detect_pos, finishing);
        detect_pos = d.from;
        if (!d.decided) return false;
        kind = d.kind;
        detect_pos = 0;
        if (kind == container::raw) return true;
        if (d.offset > 0) ++stats.resyncs;
        skip(d.offset);
        ts.synced = kind == container::mpegts;
        ogg.synced = kind == container::ogg;
        if (is_audio()) mpa = core::media::audio_framer(audio_kind(), true);
        return true;
    }

    // -----------------------------------------------------------------------------------------
    void parse_raw(core::time_point now, std::vector<cut_chunk>& out) {
        bytes b = unparsed();
        while (!b.empty()) {
            const std::size_t room = cfg.max_bytes - pending.size();
            const std::size_t n = std::min(room, b.size());
            if (pending.empty()) {
                pending_since = now;
                pending_ra = true;
            }
            pending.insert(pending.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
            consume(n);
            b = b.subspan(n);
            if (pending.size() >= cfg.max_bytes) cut(false, out);
        }
    }

    // -----------------------------------------------------------------------------------------
    void parse_ts(core::time_point now, std::vector<cut_chunk>& out) {
        for (;;) {
            const bytes b = unparsed();
            if (!ts.synced) {
                if (!resync_ts(b)) return;
                continue;
            }
            if (b.size() < ts_packet_size) return;
            if (at(b, 0) != ts_sync) {
                ts.synced = false;
                ++stats.resyncs;
                continue;
            }
            on_ts_packet(b.first(ts_packet_size), now, out);
        }
    }

    // Skips to the next position with syncs at a 188-byte stride; false when more bytes are needed.
    bool resync_ts(bytes b) {
        const auto sync = detail::find_ts_sync(b, finishing);
        skip(sync.offset);
        ts.synced = sync.found;
        return sync.found;
    }

    void on_ts_packet(bytes raw, core::time_point now, std::vector<cut_chunk>& out) {
        const ts_packet pkt = parse_ts_packet(raw);
        // A keyframe of the key PID as known before this packet (PSI packets are never key PIDs).
        bool ra = false;
        if (pkt.pid == ts.key_pid && pkt.pusi) {
            ra = ts.key_kind == es_kind::audio || pkt.rai || looks_like_keyframe(ts.key_stream_type, pkt.payload);
        }
        unit_role role = ts.collecting ? unit_role::header_part : unit_role::normal;
        const psi_result psi = on_psi(pkt);
        if (!ts.collecting && ts.header_wanted) {
            if (pkt.pid == 0 && pkt.pusi) {
                // A header chunk starts at a PAT: the first one, or the first after a change.
                ts.collecting = true;
                ts.collected_pat = psi.pat;
                ts.collected_pmts.clear();
                role = unit_role::header_start;
            } else if (psi.pmt && ts.pat_offset) {
                // A PMT changed and the PAT before it is still pending: the header chunk starts there.
                begin_header_at(*ts.pat_offset, out);
                ts.collecting = true;
                ts.collected_pat = true;
                ts.collected_pmts = ts.pmts_since_pat;
                ts.collected_pmts.insert(pkt.pid);
                role = unit_role::header_part;
            }
        }
        if (ts.collecting && ts.collected_pat && !ts.pmt_pids.empty() &&
            std::all_of(ts.pmt_pids.begin(), ts.pmt_pids.end(),
                        [this](std::uint16_t pid) { return ts.collected_pmts.contains(pid); })) {
            ts.collecting = false;
            ts.header_wanted = false;
            ts.header_pat = ts.pat;
            ts.header_pmts = ts.pmts;
            role = unit_role::header_last;
        }
        // No random access while the emitted header is out of date: a player would get the wrong one.
        ra = ra && !ts.header_wanted;
        const bool si = pkt.pid < 0x20 || pkt.pid == 0x1FFF;
        const std::size_t offset = add_unit(raw, ra, role, si, now, out);
        if (pkt.pid == 0 && pkt.pusi) {
            ts.pmts_since_pat.clear();
            ts.pat_offset.reset();
            if (psi.pat && role == unit_role::normal) ts.pat_offset = offset;
        }
        if (psi.pmt) ts.pmts_since_pat.insert(pkt.pid);
        consume(ts_packet_size);
    }

    struct psi_result {
        bool pat = false;  // a PAT section completed in this packet
        bool pmt = false;  // a PMT section completed in this packet
    };

    psi_result on_psi(const ts_packet& pkt) {
        psi_result r;
        const bool is_pmt = std::find(ts.pmt_pids.begin(), ts.pmt_pids.end(), pkt.pid) != ts.pmt_pids.end();
        if (pkt.pid != 0 && !is_pmt) return r;
        ts.assemblers[pkt.pid].push(pkt.pusi, pkt.payload, [&](bytes section) {
            if (pkt.pid == 0) r.pat = on_pat(section);
            else r.pmt = on_pmt(pkt.pid, section);
        });
        return r;
    }

    bool on_pat(bytes section) {
        if (at(section, 0) != 0x00) return false;
        ts.pat.assign(section.begin(), section.end());
        std::vector<std::uint16_t> pids;
        for (std::size_t i = 8; i + 4 <= section.size() - 4; i += 4) {
            const unsigned program = (unsigned{at(section, i)} << 8U) | at(section, i + 1);
            const auto pid = static_cast<std::uint16_t>(((at(section, i + 2) & 0x1FU) << 8U) | at(section, i + 3));
            if (program != 0 && pid != 0 && std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
        }
        ts.pmt_pids = std::move(pids);
        for (auto it = ts.pmts.begin(); it != ts.pmts.end();) {
            if (std::find(ts.pmt_pids.begin(), ts.pmt_pids.end(), it->first) == ts.pmt_pids.end()) it = ts.pmts.erase(it);
            else ++it;
        }
        for (auto it = ts.assemblers.begin(); it != ts.assemblers.end();) {
            if (it->first != 0 && std::find(ts.pmt_pids.begin(), ts.pmt_pids.end(), it->first) == ts.pmt_pids.end())
                it = ts.assemblers.erase(it);
            else ++it;
        }
        if (ts.collecting) ts.collected_pat = true;
        else if (ts.pat != ts.header_pat) ts.header_wanted = true;
        update_key_pid();
        return true;
    }

    bool on_pmt(std::uint16_t pid, bytes section) {
        if (at(section, 0) != 0x02) return false;
        ts.pmts[pid].assign(section.begin(), section.end());
        if (ts.collecting) {
            ts.collected_pmts.insert(pid);
        } else {
            const auto h = ts.header_pmts.find(pid);
            if (h == ts.header_pmts.end() || h->second != ts.pmts[pid]) ts.header_wanted = true;
        }
        update_key_pid();
        return true;
    }

    // The first video PID of the programs (in PAT order), else the first audio PID.
    void update_key_pid() {
        std::uint16_t audio = no_pid;
        std::uint8_t audio_type = 0;
        for (const auto pmt_pid : ts.pmt_pids) {
            const auto it = ts.pmts.find(pmt_pid);
            if (it == ts.pmts.end()) continue;
            const bytes s(it->second);
            const std::size_t end = s.size() - 4;
            if (s.size() < 16) continue;
            std::size_t i = 12 + (((std::size_t{at(s, 10)} & 0x0FU) << 8U) | at(s, 11));
            while (i + 5 <= end) {
                const std::uint8_t type = at(s, i);
                const auto pid = static_cast<std::uint16_t>(((at(s, i + 1) & 0x1FU) << 8U) | at(s, i + 2));
                const std::size_t info = ((std::size_t{at(s, i + 3)} & 0x0FU) << 8U) | at(s, i + 4);
                if (i + 5 + info > end) break;
                const es_kind k = classify_stream(type, s.subspan(i + 5, info));
                if (k == es_kind::video) {
                    ts.key_pid = pid;
                    ts.key_kind = k;
                    ts.key_stream_type = type;
                    return;
                }
                if (k == es_kind::audio && audio == no_pid) {
                    audio = pid;
                    audio_type = type;
                }
                i += 5 + info;
            }
        }
        ts.key_pid = audio;
        ts.key_kind = audio == no_pid ? es_kind::other : es_kind::audio;
        ts.key_stream_type = audio_type;
    }

    // -----------------------------------------------------------------------------------------
    void parse_ogg(core::time_point now, std::vector<cut_chunk>& out) {
        for (;;) {
            const bytes b = unparsed();
            if (!ogg.synced && !resync_ogg(b)) return;
            const bytes c = unparsed();
            if (c.size() < ogg_header_size) return;
            if (!starts_with(c, "OggS") || at(c, 4) != 0) {
                lose_ogg_sync();
                continue;
            }
            const auto page_size = core::media::ogg_page_size(c);
            if (!page_size) return;
            const std::size_t size = *page_size;
            const std::size_t nsegs = at(c, 26);
            const std::size_t body = size - ogg_header_size - nsegs;
            // CRC over the page with its CRC field taken as zero.
            std::uint32_t crc = crc32_msb(0, c.first(22));
            static constexpr std::array<std::byte, 4> zero{};
            crc = crc32_msb(crc, zero);
            crc = crc32_msb(crc, c.subspan(26, size - 26));
            if (crc != le32(c, 22)) {
                lose_ogg_sync();
                continue;
            }
            ogg_page page;
            page.header_type = at(c, 5);
            page.granule = static_cast<std::uint64_t>(le32(c, 6)) | (static_cast<std::uint64_t>(le32(c, 10)) << 32U);
            page.serial = le32(c, 14);
            page.segments = c.subspan(ogg_header_size, nsegs);
            page.body = c.subspan(ogg_header_size + nsegs, body);
            on_ogg_page(c.first(size), page, now, out);
        }
    }

    void lose_ogg_sync() {
        ogg.synced = false;
        ++stats.resyncs;
        skip(1);
    }

    // Skips to the next "OggS" + version 0; false when more bytes are needed.
    bool resync_ogg(bytes b) {
        const auto sync = detail::find_ogg_sync(b, finishing);
        skip(sync.offset);
        ogg.synced = sync.found;
        return sync.found;
    }

    void on_ogg_page(bytes raw, const ogg_page& page, core::time_point now, std::vector<cut_chunk>& out) {
        unit_role role = unit_role::normal;
        if (page.bos()) {
            if (!ogg.in_bos_group) {
                // A new link of a chained stream (or the first one): new headers.
                ogg.link.clear();
                ogg.collecting = true;
                role = unit_role::header_start;
            } else {
                role = ogg.collecting ? unit_role::header_part : unit_role::normal;
            }
            ogg.in_bos_group = true;
            ogg_stream s;
            s.serial = page.serial;
            s.expected = codec_header_packets(page.first_packet());
            s.done = page.packets_completed();
            s.complete = s.expected != 0 && s.done >= s.expected;
            s.theora = starts_with(page.first_packet(), "\x80theora");
            ogg.link.push_back(s);
        } else {
            ogg.in_bos_group = false;
            if (ogg.collecting) {
                const auto it = std::find_if(ogg.link.begin(), ogg.link.end(),
                                             [&](const ogg_stream& s) { return s.serial == page.serial; });
                if (it != ogg.link.end() && !it->complete) {
                    if (it->expected != 0) {
                        role = unit_role::header_part;
                        it->done += page.packets_completed();
                        it->complete = it->done >= it->expected;
                    } else if (page.granule == 0) {
                        role = unit_role::header_part;
                    } else {
                        it->complete = true;
                    }
                }
                if (role == unit_role::normal) {
                    ogg.collecting = false;  // the first data page: the header chunk ends before it
                } else if (std::all_of(ogg.link.begin(), ogg.link.end(), [](const ogg_stream& s) { return s.complete; })) {
                    ogg.collecting = false;
                    role = unit_role::header_last;
                }
            }
        }
        const bool ra = role == unit_role::normal && !page.continued() && ogg_random_access(page);
        add_unit(raw, ra, role, false, now, out);
        consume(raw.size());
    }

    // A page a player can start at (it starts a packet): with a Theora stream in the link, a Theora
    // page whose first packet is a keyframe; otherwise (audio) any page.
    bool ogg_random_access(const ogg_page& page) const noexcept {
        const auto video = std::find_if(ogg.link.begin(), ogg.link.end(), [](const ogg_stream& s) { return s.theora; });
        if (video == ogg.link.end()) return true;
        if (page.serial != video->serial) return false;
        const bytes first = page.first_packet();
        // Theora data packet: bit 7 clear; bit 6 clear for an intra frame.
        return !first.empty() && (at(first, 0) & 0xC0U) == 0;
    }

    // -----------------------------------------------------------------------------------------
    void parse_audio(core::time_point now, std::vector<cut_chunk>& out) {
        using step = core::media::audio_framer::step;
        for (;;) {
            const bytes b = unparsed();
            const auto st = mpa.next(b, finishing);
            if (st.resynced) ++stats.resyncs;
            kind = detail::container_of(mpa.kind());
            if (st.is == step::what::more) return;
            if (st.is == step::what::skip) {
                skip(st.size);
                continue;
            }
            // Every frame (and tag) is a place to start: the chunk is cut by size and time only.
            add_unit(b.first(st.size), true, unit_role::normal, false, now, out);
            consume(st.size);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The cutting policy, common to every container but raw.
    // Appends a unit to the pending chunk, cutting before or after it as the policy says; returns
    // the unit's offset in `pending` (meaningless after a cut after it).
    std::size_t add_unit(bytes unit, bool ra, unit_role role, bool si_only, core::time_point now,
                         std::vector<cut_chunk>& out) {
        switch (role) {
        case unit_role::header_start:
            // SI packets just before the PAT (for example ffmpeg's SDT) may join the header chunk.
            if (!pending.empty() && (pending_header || !(kind == container::mpegts && pending_only_si)))
                cut(pending_header && kind == container::ogg, out);
            pending_header = true;
            break;
        case unit_role::header_part:
        case unit_role::header_last:
            if (!pending_header && !pending.empty()) cut(false, out);
            pending_header = true;
            break;
        case unit_role::normal:
            if (pending_header) {
                // Only Ogg ends a header chunk this way (before its first data page).
                cut(kind == container::ogg, out);
            } else if (!pending.empty()) {
                // A chunk that does not start at a random-access point is cut before the next one
                // whatever its size: keyframes are rare, and a size cut just before one must not hide it.
                const bool at_ra = ra && !is_audio() && (pending.size() >= cfg.min_bytes || !pending_ra);
                if (at_ra || pending.size() + unit.size() > cfg.max_bytes) cut(false, out);
            }
            break;
        }
        if (pending_header && pending.size() + unit.size() > wire::max_chunk_payload) {
            // Headers this large are not headers: give up, cut what we have as an ordinary chunk.
            ts.collecting = false;
            ogg.collecting = false;
            cut(false, out);
            role = unit_role::normal;
        }
        if (pending.empty()) {
            pending_since = now;
            pending_ra = role == unit_role::normal && ra && (header_emitted || is_audio());
            pending_only_si = true;
        }
        pending_only_si = pending_only_si && si_only;
        const std::size_t offset = pending.size();
        pending.insert(pending.end(), unit.begin(), unit.end());
        if (role == unit_role::header_last) cut(true, out);
        return offset;
    }

    // Cuts pending[0, offset) as an ordinary chunk; the rest starts a header chunk.
    void begin_header_at(std::size_t offset, std::vector<cut_chunk>& out) {
        if (offset > 0) {
            std::vector<std::byte> rest(pending.begin() + static_cast<std::ptrdiff_t>(offset), pending.end());
            pending.resize(offset);
            const auto since = pending_since;
            cut(false, out);
            pending = std::move(rest);
            pending_since = since;
        }
        pending_header = true;
        pending_ra = false;
    }

    void cut(bool as_header, std::vector<cut_chunk>& out) {
        if (pending.empty()) {
            pending_header = false;
            return;
        }
        cut_chunk c;
        c.payload = std::move(pending);
        pending = {};
        if (as_header) {
            c.flags = wire::chunk::flag_header;
            header_emitted = true;
            ++stats.header_chunks;
        } else {
            c.refs_header = header_emitted && kind != container::raw && !is_audio();
            if (pending_ra) {
                c.flags = wire::chunk::flag_random_access;
                ++stats.random_access_chunks;
            }
        }
        stats.bytes_out += c.payload.size();
        ++stats.chunks;
        ts.pat_offset.reset();
        pending_header = false;
        pending_ra = false;
        pending_only_si = true;
        out.push_back(std::move(c));
    }
};

chunker::chunker(chunker_config cfg) {
    if (cfg.max_bytes < ts_packet_size || cfg.max_bytes > wire::max_chunk_payload)
        throw std::invalid_argument("chunker: max_bytes must be 188 to 1 MiB");
    if (cfg.max_duration <= core::duration::zero()) throw std::invalid_argument("chunker: max_duration must be positive");
    impl_ = std::make_unique<impl>(cfg);
}

chunker::~chunker() = default;
chunker::chunker(chunker&&) noexcept = default;
chunker& chunker::operator=(chunker&&) noexcept = default;

void chunker::feed(std::span<const std::byte> data, core::time_point now, std::vector<cut_chunk>& out) {
    impl_->feed(data, now, out);
}
void chunker::tick(core::time_point now, std::vector<cut_chunk>& out) { impl_->tick(now, out); }
void chunker::finish(std::vector<cut_chunk>& out) { impl_->finish(out); }
std::optional<core::time_point> chunker::next_deadline() const noexcept { return impl_->next_deadline(); }
container chunker::kind() const noexcept { return impl_->kind; }
const chunker_stats& chunker::stats() const noexcept { return impl_->stats; }
const chunker_config& chunker::config() const noexcept { return impl_->cfg; }

}  // namespace pixtream::source
