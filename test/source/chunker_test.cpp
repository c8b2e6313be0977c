// source::chunker on real ffmpeg output (MPEG-TS with H.264/AAC, MPEG-2/MP2 and AAC only, Ogg/Vorbis)
// and on random bytes: alignment, size and time bounds, resync, and the key property that a player
// joining at any random-access chunk (after its header chunk) decodes without a single warning.
#include "pixtream/source/chunker.hpp"
#include "pixtream/wire/messages.hpp"

#include "test_media.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace pixtream;
using namespace pixtream::source;
using namespace pixtream::source::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const core::time_point t0{core::seconds(1000)};

std::vector<cut_chunk> chunk_all(std::span<const std::byte> input, chunker_config cfg,
                                 const std::vector<std::size_t>& pieces = {}) {
    chunker c(cfg);
    std::vector<cut_chunk> out;
    if (pieces.empty()) {
        c.feed(input, t0, out);
    } else {
        std::size_t pos = 0;
        for (std::size_t i = 0; pos < input.size(); ++i) {
            const std::size_t n = std::min(pieces[i % pieces.size()], input.size() - pos);
            c.feed(input.subspan(pos, n), t0, out);
            pos += n;
        }
    }
    c.finish(out);
    return out;
}

byte_vector concat(const std::vector<cut_chunk>& chunks) {
    byte_vector all;
    for (const auto& c : chunks) append(all, c.payload);
    return all;
}

std::vector<std::size_t> random_pieces(unsigned seed) {
    std::mt19937 gen(seed);
    std::vector<std::size_t> out;
    for (int i = 0; i < 400; ++i) {
        switch (gen() % 4) {
        case 0: out.push_back(1 + gen() % 3); break;
        case 1: out.push_back(1 + gen() % 200); break;
        case 2: out.push_back(1 + gen() % 5000); break;
        default: out.push_back(1 + gen() % 70000); break;
        }
    }
    return out;
}

std::uint8_t u8(const byte_vector& b, std::size_t i) { return std::to_integer<std::uint8_t>(b[i]); }

// The sizes of the Ogg pages `b` is made of; empty if it is not whole pages.
std::vector<std::size_t> ogg_pages(const byte_vector& b) {
    std::vector<std::size_t> sizes;
    std::size_t pos = 0;
    while (pos < b.size()) {
        if (b.size() - pos < 27 || std::memcmp(b.data() + pos, "OggS", 4) != 0) return {};
        const std::size_t nsegs = u8(b, pos + 26);
        if (b.size() - pos < 27 + nsegs) return {};
        std::size_t size = 27 + nsegs;
        for (std::size_t i = 0; i < nsegs; ++i) size += u8(b, pos + 27 + i);
        if (b.size() - pos < size) return {};
        sizes.push_back(size);
        pos += size;
    }
    return sizes;
}

void check_ts_alignment(const std::vector<cut_chunk>& chunks, std::size_t max_bytes) {
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        BOOST_TEST_CONTEXT("chunk " << i) {
            const auto& p = chunks[i].payload;
            BOOST_TEST_REQUIRE(!p.empty());
            BOOST_TEST(p.size() % 188 == 0U);
            for (std::size_t off = 0; off < p.size(); off += 188) BOOST_TEST_REQUIRE(u8(p, off) == 0x47);
            BOOST_TEST(p.size() <= max_bytes);
        }
    }
}

void check_ogg_alignment(const std::vector<cut_chunk>& chunks, std::size_t max_bytes) {
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        BOOST_TEST_CONTEXT("chunk " << i) {
            const auto pages = ogg_pages(chunks[i].payload);
            BOOST_TEST_REQUIRE(!pages.empty());
            // Larger than max_bytes only when it is one page that is larger by itself.
            if (chunks[i].payload.size() > max_bytes) BOOST_TEST(pages.size() == 1U);
        }
    }
}

// For up to `samples` random-access chunks k (spread over the stream): the latest header chunk
// before k plus chunks k..end decode with ffmpeg printing nothing at -v warning.
void check_joins(const std::vector<cut_chunk>& chunks, const std::string& ext, std::size_t samples,
                 std::size_t min_ra = 3) {
    std::vector<std::size_t> ra;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        if (chunks[i].random_access()) ra.push_back(i);
    }
    BOOST_TEST_REQUIRE(ra.size() >= min_ra);
    temp_dir dir;
    const auto file = dir.path / ("join." + ext);
    for (std::size_t s = 0; s < samples; ++s) {
        const std::size_t k = ra[s * (ra.size() - 1) / std::max<std::size_t>(1, samples - 1)];
        BOOST_TEST_CONTEXT("joining at chunk " << k) {
            BOOST_TEST_REQUIRE(chunks[k].refs_header);
            std::optional<std::size_t> header;
            for (std::size_t h = 0; h < k; ++h) {
                if (chunks[h].is_header()) header = h;
            }
            BOOST_TEST_REQUIRE(header.has_value());
            byte_vector stream = chunks[*header].payload;
            for (std::size_t i = k; i < chunks.size(); ++i) append(stream, chunks[i].payload);
            write_file(file, stream);
            const auto [status, err] = ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"});
            BOOST_TEST(status == 0);
            BOOST_TEST(err.empty(), err);
        }
    }
}

// Audio without headers: every chunk is random access, starts on a frame or an ID3 tag, and chunks
// k..end decode with ffmpeg printing nothing at -v warning, for up to `samples` k spread over the stream.
void check_audio_joins(const std::vector<cut_chunk>& chunks, const std::string& format, std::size_t samples) {
    BOOST_TEST_REQUIRE(chunks.size() > samples);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        BOOST_TEST_CONTEXT("chunk " << i) {
            const auto& p = chunks[i].payload;
            BOOST_TEST(chunks[i].random_access());
            BOOST_TEST(!chunks[i].is_header());
            BOOST_TEST(!chunks[i].refs_header);
            BOOST_TEST_REQUIRE(p.size() >= 4U);
            const bool tag = std::memcmp(p.data(), "ID3", 3) == 0;
            BOOST_TEST((tag || (u8(p, 0) == 0xFF && (u8(p, 1) & 0xE0U) == 0xE0U)));
        }
    }
    temp_dir dir;
    const auto file = dir.path / ("join." + format);
    for (std::size_t s = 0; s < samples; ++s) {
        const std::size_t k = 1 + s * (chunks.size() - 2) / std::max<std::size_t>(1, samples - 1);
        BOOST_TEST_CONTEXT("joining at chunk " << k) {
            byte_vector stream;
            for (std::size_t i = k; i < chunks.size(); ++i) append(stream, chunks[i].payload);
            write_file(file, stream);
            const auto [status, err] = ffmpeg({"-v", "warning", "-f", format, "-i", file.string(), "-f", "null", "-"});
            BOOST_TEST(status == 0);
            // A headerless file's duration is estimated (a note of the demuxer, not a decoding problem).
            std::string problems;
            std::istringstream lines(err);
            for (std::string line; std::getline(lines, line);) {
                if (line.find("Estimating duration from bitrate") == std::string::npos) problems += line + "\n";
            }
            BOOST_TEST(problems.empty(), problems);
        }
    }
}

std::size_t count_if_chunks(const std::vector<cut_chunk>& chunks, bool (cut_chunk::*pred)() const noexcept) {
    return static_cast<std::size_t>(std::count_if(chunks.begin(), chunks.end(), [&](const cut_chunk& c) { return (c.*pred)(); }));
}

bool same_chunks(const std::vector<cut_chunk>& a, const std::vector<cut_chunk>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].payload != b[i].payload || a[i].flags != b[i].flags || a[i].refs_header != b[i].refs_header)
            return false;
    }
    return true;
}

// Garbage with no byte that could start a TS packet or an Ogg page.
byte_vector garbage(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    byte_vector out(n);
    for (auto& b : out) {
        auto v = static_cast<std::uint8_t>(gen());
        if (v == 0x47 || v == 'O') v = 0x11;
        b = std::byte{v};
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chunker_suite)

BOOST_AUTO_TEST_CASE(ts_h264_aac_chunks_are_aligned_bounded_and_joinable) {
    const auto& input = test_media().h264_ts;
    const chunker_config cfg{.kind = container::automatic, .max_bytes = 16 * 1024, .min_bytes = 4 * 1024};
    const auto chunks = chunk_all(input, cfg);
    BOOST_TEST(concat(chunks) == input);
    check_ts_alignment(chunks, cfg.max_bytes);

    // The first chunk is the header: ffmpeg's SDT, PAT and PMT.
    BOOST_TEST_REQUIRE(chunks.size() > 2U);
    BOOST_TEST(chunks[0].is_header());
    BOOST_TEST(chunks[0].payload.size() == 3 * 188U);
    BOOST_TEST(count_if_chunks(chunks, &cut_chunk::is_header) == 1U);
    BOOST_TEST(!chunks[0].refs_header);
    for (std::size_t i = 1; i < chunks.size(); ++i) BOOST_TEST(chunks[i].refs_header);

    // Random-access chunks start at a video keyframe: ffmpeg marks it with random_access_indicator.
    std::size_t ra = 0;
    for (const auto& c : chunks) {
        if (!c.random_access()) continue;
        ++ra;
        const auto& p = c.payload;
        const unsigned pid = ((u8(p, 1) & 0x1FU) << 8U) | u8(p, 2);
        BOOST_TEST(pid == 256U);                     // the video PID (audio PES starts are not keyframes)
        BOOST_TEST((u8(p, 1) & 0x40U) != 0);         // payload_unit_start_indicator
        BOOST_TEST((u8(p, 3) & 0x20U) != 0);         // adaptation field present
        BOOST_TEST((u8(p, 5) & 0x40U) != 0);         // random_access_indicator
    }
    BOOST_TEST(ra == 6U);  // one per second (-g 25 at 25 fps)

    chunker c(cfg);
    std::vector<cut_chunk> out;
    c.feed(input, t0, out);
    BOOST_TEST(c.kind() == container::mpegts);
    BOOST_TEST(c.stats().bytes_in == input.size());
    BOOST_TEST(c.stats().bytes_skipped_resync == 0U);

    check_joins(chunks, "ts", 4);
}

BOOST_AUTO_TEST_CASE(ts_mpeg2_and_audio_only_are_joinable) {
    const chunker_config cfg{.kind = container::mpegts, .max_bytes = 32 * 1024, .min_bytes = 8 * 1024};
    const auto chunks = chunk_all(test_media().mpeg2_ts, cfg);
    BOOST_TEST(concat(chunks) == test_media().mpeg2_ts);
    check_ts_alignment(chunks, cfg.max_bytes);
    check_joins(chunks, "ts", 4);

    // Audio only: every PES start of the audio PID is a random-access point.
    const chunker_config small{.kind = container::automatic, .max_bytes = 4 * 1024, .min_bytes = 1024};
    const auto audio = chunk_all(test_media().aac_ts, small);
    BOOST_TEST(concat(audio) == test_media().aac_ts);
    check_ts_alignment(audio, small.max_bytes);
    check_joins(audio, "ts", 3);
}

BOOST_AUTO_TEST_CASE(ogg_vorbis_chunks_are_pages_and_joinable) {
    const auto& input = test_media().vorbis_ogg;
    const chunker_config cfg{.kind = container::automatic, .max_bytes = 8 * 1024, .min_bytes = 2 * 1024};
    const auto chunks = chunk_all(input, cfg);
    BOOST_TEST(concat(chunks) == input);
    check_ogg_alignment(chunks, cfg.max_bytes);

    // The header chunk: the BOS page (identification header) and the page with comment and setup.
    BOOST_TEST_REQUIRE(chunks.size() > 4U);
    BOOST_TEST(chunks[0].is_header());
    BOOST_TEST(ogg_pages(chunks[0].payload).size() == 2U);
    BOOST_TEST(count_if_chunks(chunks, &cut_chunk::is_header) == 1U);
    for (std::size_t i = 1; i < chunks.size(); ++i) {
        BOOST_TEST(chunks[i].refs_header);
        BOOST_TEST(chunks[i].random_access());  // ffmpeg never continues a packet across pages here
    }
    check_joins(chunks, "ogg", 4);
}

// A live input arrives slowly: the time bound must not cut the header chunk before all its header
// pages are in (a late joiner would get the identification header without comment and setup).
BOOST_AUTO_TEST_CASE(slow_ogg_input_keeps_the_header_chunk_whole) {
    const auto& input = test_media().vorbis_ogg;
    const chunker_config cfg{.kind = container::automatic, .max_bytes = 8 * 1024, .min_bytes = 2 * 1024,
                             .max_duration = core::milliseconds(250)};
    chunker c(cfg);
    std::vector<cut_chunk> chunks;
    auto now = t0;
    for (std::size_t pos = 0; pos < input.size(); pos += 500) {
        c.feed(std::span(input).subspan(pos, std::min<std::size_t>(500, input.size() - pos)), now, chunks);
        now += core::milliseconds(300);  // longer than max_duration between pieces
        c.tick(now, chunks);
    }
    c.finish(chunks);
    BOOST_TEST(concat(chunks) == input);
    BOOST_TEST_REQUIRE(chunks.size() > 4U);
    BOOST_TEST(chunks[0].is_header());
    BOOST_TEST(ogg_pages(chunks[0].payload).size() == 2U);
    check_joins(chunks, "ogg", 3);
}

BOOST_AUTO_TEST_CASE(ogg_theora_random_access_is_at_video_keyframes) {
    const auto& input = test_media().theora_ogg;
    const chunker_config cfg{.kind = container::automatic, .max_bytes = 16 * 1024, .min_bytes = 4 * 1024};
    const auto chunks = chunk_all(input, cfg);
    BOOST_TEST(concat(chunks) == input);
    check_ogg_alignment(chunks, cfg.max_bytes);
    // Header: both BOS pages, then the Theora and Vorbis comment and setup pages.
    BOOST_TEST_REQUIRE(chunks[0].is_header());
    BOOST_TEST(ogg_pages(chunks[0].payload).size() == 4U);
    std::size_t ra = 0;
    for (const auto& c : chunks) {
        if (!c.random_access()) continue;
        ++ra;
        // The first page belongs to the Theora stream and starts with an intra frame.
        const auto& p = c.payload;
        BOOST_TEST(std::memcmp(p.data() + 14, chunks[0].payload.data() + 14, 4) == 0);  // Theora's serial
        const std::size_t nsegs = u8(p, 26);
        BOOST_TEST((u8(p, 27 + nsegs) & 0xC0U) == 0U);
    }
    BOOST_TEST(ra == 5U);  // keyframes at 0, 1, 2, 3 and 4 s
    check_joins(chunks, "ogg", 3);
}

BOOST_AUTO_TEST_CASE(chained_streams_get_a_new_header_chunk) {
    // Two TS files back to back (H.264 then MPEG-2 on the same PIDs: the PMT changes).
    byte_vector ts = test_media().h264_ts;
    append(ts, test_media().mpeg2_ts);
    const chunker_config cfg{.kind = container::mpegts, .max_bytes = 32 * 1024, .min_bytes = 8 * 1024};
    auto chunks = chunk_all(ts, cfg);
    BOOST_TEST(concat(chunks) == ts);
    BOOST_TEST_REQUIRE(count_if_chunks(chunks, &cut_chunk::is_header) == 2U);
    // The second header starts at the second file's PAT (its SDT stays with the previous chunk).
    std::size_t offset = 0;
    std::size_t second = 0;
    for (std::size_t i = 1; i < chunks.size(); ++i) {
        if (chunks[i].is_header()) {
            second = i;
            break;
        }
        offset += chunks[i].payload.size();
    }
    BOOST_TEST(offset + chunks[0].payload.size() == test_media().h264_ts.size() + 188);
    BOOST_TEST(chunks[second].payload.size() == 2 * 188U);
    BOOST_TEST(chunks[second + 1].random_access());
    // Joining in the second part uses the second header.
    chunks.erase(chunks.begin(), chunks.begin() + static_cast<std::ptrdiff_t>(second));
    check_joins(chunks, "ts", 3);

    // A chained Ogg stream: a new BOS page starts a new header chunk.
    byte_vector ogg = test_media().vorbis_ogg;
    append(ogg, test_media().vorbis_ogg);
    const auto pages = chunk_all(ogg, {.kind = container::ogg, .max_bytes = 8 * 1024, .min_bytes = 2 * 1024});
    BOOST_TEST(concat(pages) == ogg);
    BOOST_TEST(count_if_chunks(pages, &cut_chunk::is_header) == 2U);
}

BOOST_AUTO_TEST_CASE(mp3_and_adts_chunks_start_on_frames_and_are_joinable) {
    const std::tuple<const byte_vector*, container, const char*> cases[] = {
        {&test_media().mp3, container::mp3, "mp3"},
        {&test_media().adts, container::adts, "aac"},
    };
    for (const auto& [input, kind, format] : cases) {
        BOOST_TEST_CONTEXT(name_of(kind)) {
            const chunker_config cfg{.kind = container::automatic, .max_bytes = 4 * 1024, .min_bytes = 1024};
            chunker c(cfg);
            std::vector<cut_chunk> chunks;
            c.feed(*input, t0, chunks);
            c.finish(chunks);
            BOOST_TEST(c.kind() == kind);
            BOOST_TEST(c.stats().bytes_skipped_resync == 0U);
            BOOST_TEST(concat(chunks) == *input);
            // Cut by size only (the time here stands still): each chunk is as full as whole frames allow.
            for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
                BOOST_TEST(chunks[i].payload.size() <= cfg.max_bytes);
                BOOST_TEST(chunks[i].payload.size() + 1500 > cfg.max_bytes);
            }
            check_audio_joins(chunks, format, 4);
            for (unsigned seed : {1U, 2U}) BOOST_TEST(same_chunks(chunk_all(*input, cfg, random_pieces(seed)), chunks));
            BOOST_TEST(same_chunks(chunk_all(*input, cfg, {1}), chunks));
        }
    }
}

BOOST_AUTO_TEST_CASE(mp3_garbage_between_frames_is_skipped) {
    const auto& mp3 = test_media().mp3;
    byte_vector input(mp3.begin(), mp3.begin() + 20000);
    append(input, garbage(777, 3));
    input.insert(input.end(), mp3.begin() + 20000, mp3.end());
    const chunker_config cfg{.kind = container::mp3, .max_bytes = 4 * 1024, .min_bytes = 1024};
    chunker c(cfg);
    std::vector<cut_chunk> chunks;
    c.feed(input, t0, chunks);
    c.finish(chunks);
    BOOST_TEST(c.stats().resyncs >= 1U);
    BOOST_TEST(c.stats().bytes_skipped_resync >= 777U);
    BOOST_TEST(c.stats().bytes_skipped_resync < 777U + 2000U);  // at most the frame the garbage cut into
    check_audio_joins(chunks, "mp3", 2);
}

// An ID3 tag cut short by the end of the input (a broadcaster that dropped) ends the stream: the
// chunker finishes (no endless resync), and the partial tag is dropped as garbage.
BOOST_AUTO_TEST_CASE(an_id3_tag_cut_short_at_the_end_finishes) {
    const byte_vector input = with_cut_short_id3_tag(test_media().mp3);
    const chunker_config cfg{.kind = container::mp3, .max_bytes = 4 * 1024, .min_bytes = 1024};
    chunker c(cfg);
    std::vector<cut_chunk> chunks;
    c.feed(input, t0, chunks);
    c.finish(chunks);
    BOOST_TEST(concat(chunks) == test_media().mp3);
    BOOST_TEST(c.stats().bytes_skipped_resync == 110U);
}

// A broadcaster that comes back with another container (MP3, then MPEG-TS): detected afresh.
BOOST_AUTO_TEST_CASE(another_container_after_finish_is_detected) {
    chunker c({.kind = container::automatic, .max_bytes = 8 * 1024});
    std::vector<cut_chunk> out;
    c.feed(test_media().mp3, t0, out);
    c.finish(out);
    BOOST_TEST(c.kind() == container::mp3);
    const auto mp3_chunks = out.size();
    c.feed(test_media().aac_ts, t0, out);
    BOOST_TEST(c.kind() == container::mpegts);
    c.finish(out);
    byte_vector expected = test_media().mp3;
    append(expected, test_media().aac_ts);
    BOOST_TEST(concat(out) == expected);
    BOOST_TEST(c.stats().bytes_skipped_resync == 0U);
    BOOST_TEST_REQUIRE(out.size() > mp3_chunks);
    BOOST_TEST(out[mp3_chunks].is_header());  // the TS stream's PAT and PMT
}

BOOST_AUTO_TEST_CASE(random_size_pieces_give_the_same_chunks) {
    const std::pair<const byte_vector*, chunker_config> cases[] = {
        {&test_media().h264_ts, {.max_bytes = 16 * 1024, .min_bytes = 4 * 1024}},
        {&test_media().vorbis_ogg, {.max_bytes = 8 * 1024, .min_bytes = 2 * 1024}},
        {&test_media().mpeg2_ts, {.kind = container::raw, .max_bytes = 10000}},
    };
    for (const auto& [input, cfg] : cases) {
        const auto whole = chunk_all(*input, cfg);
        for (unsigned seed : {1U, 2U, 3U}) {
            BOOST_TEST_CONTEXT("kind " << name_of(cfg.kind) << ", seed " << seed) {
                BOOST_TEST(same_chunks(chunk_all(*input, cfg, random_pieces(seed)), whole));
            }
        }
        BOOST_TEST(same_chunks(chunk_all(*input, cfg, {1}), whole));
    }
}

BOOST_AUTO_TEST_CASE(raw_input_is_cut_by_size_and_every_chunk_is_random_access) {
    const auto input = garbage(100'000, 7);
    const chunker_config cfg{.kind = container::automatic, .max_bytes = 16 * 1024};
    chunker c(cfg);
    std::vector<cut_chunk> out;
    c.feed(input, t0, out);
    BOOST_TEST(c.kind() == container::raw);  // 64 KiB of no container
    c.finish(out);
    BOOST_TEST(concat(out) == input);
    BOOST_TEST_REQUIRE(out.size() == 7U);
    for (std::size_t i = 0; i < out.size(); ++i) {
        BOOST_TEST(out[i].payload.size() == (i + 1 < out.size() ? cfg.max_bytes : input.size() % cfg.max_bytes));
        BOOST_TEST(out[i].flags == wire::chunk::flag_random_access);
        BOOST_TEST(!out[i].refs_header);
    }
    // A short raw input is recognised at its end.
    chunker small(cfg);
    std::vector<cut_chunk> tiny;
    small.feed(std::span(input).first(100), t0, tiny);
    BOOST_TEST(tiny.empty());
    BOOST_TEST(small.kind() == container::automatic);
    small.finish(tiny);
    BOOST_TEST(small.kind() == container::raw);
    BOOST_TEST_REQUIRE(tiny.size() == 1U);
    BOOST_TEST(tiny[0].payload.size() == 100U);
}

BOOST_AUTO_TEST_CASE(time_bound_cuts) {
    const auto& ts = test_media().h264_ts;
    const chunker_config cfg{.kind = container::mpegts, .max_bytes = 64 * 1024, .max_duration = 500ms};
    chunker c(cfg);
    std::vector<cut_chunk> out;
    BOOST_TEST(!c.next_deadline());
    // Header (3 packets) at once, then 10 packets of the first GOP and a partial one.
    c.feed(std::span(ts).first(13 * 188 + 50), t0, out);
    BOOST_TEST_REQUIRE(out.size() == 1U);
    BOOST_TEST(out[0].is_header());
    BOOST_TEST_REQUIRE(c.next_deadline().has_value());
    BOOST_TEST((*c.next_deadline() == t0 + 500ms));
    c.tick(t0 + 499ms, out);
    BOOST_TEST(out.size() == 1U);
    c.tick(t0 + 500ms, out);
    BOOST_TEST_REQUIRE(out.size() == 2U);
    BOOST_TEST(out[1].payload.size() == 10 * 188U);
    BOOST_TEST(out[1].random_access());
    BOOST_TEST(c.stats().time_cuts == 1U);
    // The partial packet is not cuttable: no deadline until it completes.
    BOOST_TEST(!c.next_deadline());
    c.feed(std::span(ts).subspan(13 * 188 + 50, 188), t0 + 600ms, out);
    BOOST_TEST((c.next_deadline() == t0 + 600ms + 500ms));
    // Data fed after the deadline: the due chunk is cut first.
    c.feed(std::span(ts).subspan(14 * 188 + 50, 188), t0 + 2s, out);
    BOOST_TEST_REQUIRE(out.size() == 3U);
    BOOST_TEST(out[2].payload.size() == 188U);
    BOOST_TEST(!out[2].random_access());

    // Raw: the same bound.
    chunker r({.kind = container::raw, .max_bytes = 4096, .max_duration = 100ms});
    std::vector<cut_chunk> raw;
    const auto bytes = garbage(1000, 3);
    r.feed(bytes, t0, raw);
    BOOST_TEST(raw.empty());
    r.tick(t0 + 100ms, raw);
    BOOST_TEST_REQUIRE(raw.size() == 1U);
    BOOST_TEST(raw[0].payload.size() == 1000U);
    BOOST_TEST(!r.next_deadline());
}

BOOST_AUTO_TEST_CASE(garbage_is_skipped_and_counted) {
    const auto& ts = test_media().h264_ts;
    const auto prefix = garbage(1000, 11);
    const auto infix = garbage(333, 12);
    const std::size_t cut_at = 200 * 188;
    byte_vector dirty = prefix;
    append(dirty, std::span(ts).first(cut_at));
    append(dirty, infix);
    append(dirty, std::span(ts).subspan(cut_at));
    dirty.resize(dirty.size() + 100, std::byte{0x47});  // a trailing partial packet

    const chunker_config cfg{.kind = container::automatic, .max_bytes = 16 * 1024};
    chunker c(cfg);
    std::vector<cut_chunk> out;
    c.feed(dirty, t0, out);
    c.finish(out);
    BOOST_TEST(c.kind() == container::mpegts);
    BOOST_TEST(concat(out) == ts);
    BOOST_TEST(c.stats().bytes_skipped_resync == prefix.size() + infix.size() + 100);
    BOOST_TEST(c.stats().bytes_out == ts.size());
    check_ts_alignment(out, cfg.max_bytes);
    BOOST_TEST(same_chunks(chunk_all(dirty, cfg, random_pieces(5)), out));

    // Ogg: garbage, including a fake capture pattern whose page fails its CRC.
    const auto& ogg = test_media().vorbis_ogg;
    const auto pages = ogg_pages(ogg);
    const std::size_t page_cut = pages[0] + pages[1] + pages[2];
    byte_vector fake = garbage(50, 13);
    const char capture[] = "OggS\0\0\0\0\0\0\0\0\0\0";
    std::memcpy(fake.data() + 10, capture, sizeof capture - 1);
    byte_vector dirty_ogg = garbage(777, 14);
    append(dirty_ogg, std::span(ogg).first(page_cut));
    append(dirty_ogg, fake);
    append(dirty_ogg, std::span(ogg).subspan(page_cut));
    chunker o({.kind = container::automatic, .max_bytes = 8 * 1024});
    std::vector<cut_chunk> ogg_out;
    o.feed(dirty_ogg, t0, ogg_out);
    o.finish(ogg_out);
    BOOST_TEST(o.kind() == container::ogg);
    BOOST_TEST(concat(ogg_out) == ogg);
    BOOST_TEST(o.stats().bytes_skipped_resync == 777U + fake.size());
    check_ogg_alignment(ogg_out, 8 * 1024);
}

BOOST_AUTO_TEST_CASE(feeding_goes_on_after_finish) {
    // finish() is also how the source reports a broken input; a reconnect feeds the same stream again.
    const auto& ts = test_media().aac_ts;
    chunker c({.kind = container::automatic, .max_bytes = 16 * 1024});
    std::vector<cut_chunk> out;
    c.feed(std::span(ts).first(100 * 188 + 17), t0, out);
    c.finish(out);
    BOOST_TEST(c.stats().bytes_skipped_resync == 17U);
    c.feed(ts, t0, out);
    c.finish(out);
    byte_vector expected(ts.begin(), ts.begin() + 100 * 188);
    append(expected, ts);
    BOOST_TEST(concat(out) == expected);
    // Same PAT and PMT after the reconnect: no new header chunk.
    BOOST_TEST(count_if_chunks(out, &cut_chunk::is_header) == 1U);
}

BOOST_AUTO_TEST_CASE(invalid_configuration_is_refused) {
    BOOST_CHECK_THROW(chunker({.max_bytes = 100}), std::invalid_argument);
    BOOST_CHECK_THROW(chunker({.max_bytes = 2 << 20}), std::invalid_argument);
    BOOST_CHECK_THROW(chunker({.max_duration = core::duration::zero()}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
