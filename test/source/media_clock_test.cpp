// source::media_clock on real ffmpeg output (MPEG-TS, Ogg Vorbis and Theora, MP3, ADTS) and raw bytes:
// every byte passes in order, the times span the media's duration however the input is split,
// restarts and jumps are discontinuities; source::media_pacer with a fake clock.
#include "pixtream/source/media_clock.hpp"

#include "test_media.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>

using namespace pixtream;
using namespace pixtream::source;
using namespace pixtream::source::testing;
using namespace std::chrono_literals;

namespace {

struct clocked {
    std::vector<timed_piece> pieces;
    container kind = container::automatic;
    clock_source source = clock_source::none;
};

clocked run_clock(std::span<const std::byte> input, std::size_t piece_size, media_clock_config cfg = {}) {
    media_clock c(cfg);
    clocked r;
    for (std::size_t pos = 0; pos < input.size(); pos += piece_size)
        c.feed(input.subspan(pos, std::min(piece_size, input.size() - pos)), r.pieces);
    c.finish(r.pieces);
    r.kind = c.kind();
    r.source = c.source();
    return r;
}

byte_vector concat(const std::vector<timed_piece>& pieces) {
    byte_vector all;
    for (const auto& p : pieces) append(all, p.bytes);
    return all;
}

// The first and the last time, and whether any piece is a discontinuity.
struct span_info {
    double first = 0, last = 0;
    std::size_t timed = 0, discontinuities = 0;
};

span_info times(const std::vector<timed_piece>& pieces) {
    span_info s;
    for (const auto& p : pieces) {
        if (p.discontinuity) ++s.discontinuities;
        if (!p.media_s) continue;
        if (s.timed++ == 0) s.first = *p.media_s;
        s.last = *p.media_s;
    }
    return s;
}

void check_clock(const byte_vector& input, container kind, clock_source source, double duration, double tolerance) {
    const auto whole = run_clock(input, input.size());
    BOOST_TEST(whole.kind == kind);
    BOOST_TEST(whole.source == source);
    BOOST_TEST(concat(whole.pieces) == input);
    const auto s = times(whole.pieces);
    BOOST_TEST(s.timed > 10U);
    BOOST_TEST(s.discontinuities == 0U);
    BOOST_TEST(s.last - s.first > duration - tolerance);
    BOOST_TEST(s.last - s.first < duration + tolerance);
    // Never more than a little backwards (video PTS order aside, the clocks here are monotonic).
    double prev = -1;
    for (const auto& p : whole.pieces) {
        if (!p.media_s) continue;
        BOOST_TEST(*p.media_s >= prev - 1e-9);
        prev = *p.media_s;
    }
    for (const std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{65536}}) {
        BOOST_TEST_CONTEXT("fed " << step << " bytes at a time") {
            const auto split = run_clock(input, step);
            BOOST_TEST(concat(split.pieces) == input);
            const auto a = times(split.pieces);
            // Units share a piece when less than merge_s apart, so a split moves a piece's time by less.
            BOOST_TEST(a.first == s.first);
            BOOST_TEST(std::abs(a.last - s.last) < media_clock_config{}.merge_s);
            BOOST_TEST(a.discontinuities == 0U);
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(media_clock_suite)

BOOST_AUTO_TEST_CASE(mpegts_is_timed_by_its_pcr) {
    check_clock(test_media().h264_ts, container::mpegts, clock_source::pcr, 6.0, 0.3);
    check_clock(test_media().aac_ts, container::mpegts, clock_source::pcr, 4.0, 0.3);
}

BOOST_AUTO_TEST_CASE(ogg_is_timed_by_granule_positions) {
    check_clock(test_media().vorbis_ogg, container::ogg, clock_source::granule, 6.0, 0.3);
    check_clock(test_media().theora_ogg, container::ogg, clock_source::granule, 5.0, 0.3);
}

BOOST_AUTO_TEST_CASE(mp3_and_adts_are_timed_by_their_frames) {
    check_clock(test_media().mp3, container::mp3, clock_source::frames, 5.0, 0.1);
    check_clock(test_media().adts, container::adts, clock_source::frames, 5.0, 0.1);
}

BOOST_AUTO_TEST_CASE(raw_bytes_are_timed_by_the_given_rate_only) {
    byte_vector input(100'000);
    std::mt19937 gen(5);
    for (auto& b : input) b = std::byte{static_cast<std::uint8_t>((gen() % 200) + 1)};  // no 0x47 stride, no OggS
    const auto untimed = run_clock(input, 4096);
    BOOST_TEST(untimed.kind == container::raw);
    BOOST_TEST(untimed.source == clock_source::none);
    BOOST_TEST(concat(untimed.pieces) == input);
    BOOST_TEST(times(untimed.pieces).timed == 0U);

    const auto paced = run_clock(input, 4096, {.raw_bytes_per_s = 10'000});
    BOOST_TEST(paced.source == clock_source::bytes);
    BOOST_TEST(concat(paced.pieces) == input);
    const auto s = times(paced.pieces);
    BOOST_TEST(s.first == 0.0);
    BOOST_TEST(s.last > 9.9);
    BOOST_TEST(s.last < 10.0);
}

// A slow input with no container in sight is raw once detect_timeout passed (not after 64 KiB).
BOOST_AUTO_TEST_CASE(a_slow_input_is_raw_after_the_detection_timeout) {
    const core::time_point t0{core::seconds(50)};
    media_clock c({.detect_timeout = core::milliseconds(500)});
    std::vector<timed_piece> out;
    const byte_vector bytes(100, std::byte{0x11});
    c.feed(bytes, t0, out);
    c.feed(bytes, t0 + 300ms, out);
    BOOST_TEST(c.kind() == container::automatic);
    BOOST_TEST(concat(out).empty());  // held while undecided
    c.feed(bytes, t0 + 600ms, out);
    BOOST_TEST(c.kind() == container::raw);
    BOOST_TEST(concat(out).size() == 300U);  // every byte, none lost
}

// A tag cut short by the end of the input ends the stream (no endless resync).
BOOST_AUTO_TEST_CASE(an_id3_tag_cut_short_at_the_end_is_passed_on) {
    const byte_vector input = with_cut_short_id3_tag(test_media().mp3);
    const auto r = run_clock(input, 4096);
    BOOST_TEST(concat(r.pieces) == input);
    BOOST_TEST(r.kind == container::mp3);
}

BOOST_AUTO_TEST_CASE(a_restarted_or_jumping_stream_is_a_discontinuity) {
    // Two encoder runs back to back: the second TS starts its clock 1000 s later, the second Ogg is a
    // new chained link whose granules start at 0 again.
    temp_dir dir;
    const auto later = (dir.path / "later.ts").string();
    const auto [status, err] = ffmpeg({"-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100",
                                       "-t", "3", "-c:a", "aac", "-output_ts_offset", "1000", "-f", "mpegts", later});
    BOOST_TEST_REQUIRE(status == 0, err);
    for (const auto& [first, second] : {std::pair{test_media().aac_ts, read_file(later)},
                                        std::pair{test_media().vorbis_ogg, test_media().vorbis_ogg}}) {
        byte_vector input = first;
        append(input, second);
        for (const std::size_t step : {std::size_t{500}, input.size()}) {
            const auto r = run_clock(input, step);
            BOOST_TEST(concat(r.pieces) == input);
            BOOST_TEST(times(r.pieces).discontinuities == 1U);
        }
    }
    // finish() (the input broke, a looped file starts again): the next timed piece is one.
    media_clock c;
    std::vector<timed_piece> out;
    c.feed(test_media().mp3, out);
    c.finish(out);
    BOOST_TEST(times(out).discontinuities == 0U);
    out.clear();
    c.feed(test_media().mp3, out);
    c.finish(out);
    const auto s = times(out);
    BOOST_TEST(s.discontinuities == 1U);
    BOOST_TEST(s.first == 0.0);
    // ... and another container after it is detected afresh.
    out.clear();
    c.feed(test_media().h264_ts, out);
    c.finish(out);
    BOOST_TEST(c.kind() == container::mpegts);
    BOOST_TEST(c.source() == clock_source::pcr);
    BOOST_TEST(concat(out) == test_media().h264_ts);
}

BOOST_AUTO_TEST_CASE(pacer_holds_pieces_to_real_time) {
    const core::time_point t0{core::seconds(100)};
    media_pacer p;
    const auto piece = [](std::optional<double> s, bool disc = false) {
        timed_piece tp;
        tp.media_s = s;
        tp.discontinuity = disc;
        return tp;
    };
    BOOST_TEST((p.release_at(piece(std::nullopt), t0) == t0));            // untimed: at once
    BOOST_TEST((p.release_at(piece(50.0), t0) == t0));                    // anchors
    BOOST_TEST((p.release_at(piece(50.5), t0) == t0 + 500ms));           // a burst is held back
    BOOST_TEST((p.release_at(piece(52.0), t0 + 500ms) == t0 + 2s));
    BOOST_TEST((p.release_at(piece(52.1), t0 + 2900ms) == t0 + 2900ms)); // late by 0.8 s: at once
    BOOST_TEST(p.anchors() == 1U);
    // Late by more than max_late (a stalled live input): the anchor moves, the rest keep their pace.
    BOOST_TEST((p.release_at(piece(53.0), t0 + 6s) == t0 + 6s));
    BOOST_TEST(p.anchors() == 2U);
    BOOST_TEST((p.release_at(piece(53.5), t0 + 6s) == t0 + 6500ms));
    // A discontinuity anchors afresh; so does a time far ahead.
    BOOST_TEST((p.release_at(piece(1.0, true), t0 + 7s) == t0 + 7s));
    BOOST_TEST((p.release_at(piece(1.2), t0 + 7s) == t0 + 7200ms));
    BOOST_TEST((p.release_at(piece(500.0), t0 + 7s) == t0 + 7s));
    BOOST_TEST(p.anchors() == 4U);
    p.reset();
    BOOST_TEST((p.release_at(piece(9.0), t0 + 8s) == t0 + 8s));
    BOOST_TEST(p.anchors() == 5U);
}

BOOST_AUTO_TEST_SUITE_END()
