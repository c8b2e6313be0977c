#include "pixtream/peer/playout.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace std::chrono_literals;

namespace {

const core::time_point t0{std::chrono::seconds(100)};
const core::wall_micros w0 = 1'000'000'000;

// Chunk `id` cut at wall time w0 + id * 100 ms.
wire::chunk_ptr make(std::uint64_t id, bool ra = true, std::uint8_t extra = 0, std::uint64_t header = ~std::uint64_t{0}) {
    auto c = std::make_shared<wire::chunk>();
    c->id = core::chunk_id{id};
    c->timestamp = w0 + id * 100'000;
    c->flags = static_cast<std::uint8_t>((ra ? wire::chunk::flag_random_access : 0) | extra);
    c->header_ref = core::chunk_id{header};
    return c;
}

std::vector<peer::playout_event> poll(peer::playout& p, core::time_point at, const peer::chunk_store& s) {
    std::vector<peer::playout_event> out;
    p.poll(at, s, out);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(playout_suite)

// Lag 1 s: chunk id is due at t0 + id * 100 ms + 1 s (wall and steady anchors coincide at t0/w0).
BOOST_AUTO_TEST_CASE(plays_each_chunk_at_its_due_time) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    for (std::uint64_t i = 0; i < 3; ++i) s.insert(make(i));
    BOOST_TEST(poll(p, t0 + 999ms, s).empty());
    BOOST_TEST((p.next_deadline(s) == t0 + 1s));
    auto ev = poll(p, t0 + 1s, s);
    BOOST_TEST_REQUIRE(ev.size() == 1U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::play));
    ev = poll(p, t0 + 1250ms, s);
    BOOST_TEST(ev.size() == 2U);
    BOOST_TEST(p.stats().played == 3U);
    BOOST_TEST(!p.next_deadline(s).has_value());  // nothing held: the next arrival wakes us
}

BOOST_AUTO_TEST_CASE(missing_chunk_is_skipped_when_a_later_one_is_due) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    s.insert(make(0));
    s.insert(make(2));
    auto ev = poll(p, t0 + 1150ms, s);  // 0 played; 1 missing but 2 not yet due: wait
    BOOST_TEST(ev.size() == 1U);
    BOOST_TEST(p.next().value() == 1U);
    ev = poll(p, t0 + 1200ms, s);       // 2 due: 1 skipped, 2 played
    BOOST_TEST_REQUIRE(ev.size() == 2U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::skip));
    BOOST_TEST(ev[0].id.value() == 1U);
    BOOST_TEST((ev[1].what == peer::playout_event::kind::play));
    BOOST_TEST(p.stats().continuity() == 2.0 / 3.0, boost::test_tools::tolerance(1e-9));
}

// Nothing later is held, but neighbours have later chunks: the missing ones are skipped one chunk
// interval apart (one lag after they were due), counted against continuity, and next_deadline wakes
// the caller for each.
BOOST_AUTO_TEST_CASE(missing_chunks_are_skipped_by_time_when_the_swarm_has_later_ones) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    p.set_interval(100ms);
    s.insert(make(0));
    BOOST_TEST(poll(p, t0 + 1s, s).size() == 1U);  // 0 played
    BOOST_TEST(!p.next_deadline(s).has_value());   // edge unknown: wait for an arrival
    p.set_live_edge(core::chunk_id{5});
    BOOST_TEST((p.next_deadline(s) == t0 + 2200ms));  // 1 is given up on one lag after 2 would be due
    BOOST_TEST(poll(p, t0 + 2199ms, s).empty());
    auto ev = poll(p, t0 + 2350ms, s);
    BOOST_TEST_REQUIRE(ev.size() == 2U);  // 1 and 2
    BOOST_TEST((ev[0].what == peer::playout_event::kind::skip));
    BOOST_TEST(ev[1].id.value() == 2U);
    BOOST_TEST(p.stats().skipped == 2U);
    // Never past the live edge: 3 and 4 go, 5 (the newest anyone has) is waited for.
    ev = poll(p, t0 + 10s, s);
    BOOST_TEST(ev.size() == 2U);
    BOOST_TEST(p.next().value() == 5U);
    s.insert(make(5));
    ev = poll(p, t0 + 10s, s);
    BOOST_TEST_REQUIRE(ev.size() == 1U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::play));
    // 5 was due at 1.5 s and is played at 10 s: late. On time: only 0, of 6 that fell due.
    BOOST_TEST(p.stats().late == 1U);
    BOOST_TEST(p.stats().continuity() == 1.0 / 6.0, boost::test_tools::tolerance(1e-9));
}

// Played at its due time, or a little after (the caller's wake-up is never exact): on time.
BOOST_AUTO_TEST_CASE(on_time_play_gives_full_continuity) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    for (std::uint64_t i = 0; i < 20; ++i) s.insert(make(i));
    for (std::uint64_t i = 0; i < 20; ++i) {
        const auto at = t0 + 1s + std::chrono::milliseconds(100 * i) + (i % 2 == 0 ? 0ms : 90ms);  // or 90 ms after
        BOOST_TEST(poll(p, at, s).size() == 1U);
    }
    BOOST_TEST(p.stats().played == 20U);
    BOOST_TEST(p.stats().late == 0U);
    BOOST_TEST(p.stats().skipped == 0U);
    BOOST_TEST(p.stats().continuity() == 1.0);
}

// The swarm (or the source) stalls: chunk 2 is neither held nor announced anywhere (the live edge
// is 1) long after it fell due, so nothing is skipped; it arrives 3.8 s late and is played at once.
// It fell due while the peer was playing and was not there: it counts against continuity.
BOOST_AUTO_TEST_CASE(a_stall_with_nothing_later_announced_lowers_continuity) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    p.set_interval(100ms);
    s.insert(make(0));
    s.insert(make(1));
    p.set_live_edge(core::chunk_id{1});
    BOOST_TEST(poll(p, t0 + 1100ms, s).size() == 2U);  // 0 and 1 on time
    BOOST_TEST(poll(p, t0 + 5s, s).empty());           // 2 (due at 1.2 s) nowhere: waited for
    BOOST_TEST(p.stats().skipped == 0U);
    s.insert(make(2));
    s.insert(make(3));
    p.set_live_edge(core::chunk_id{3});
    const auto ev = poll(p, t0 + 5s, s);
    BOOST_TEST_REQUIRE(ev.size() == 2U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::play));
    BOOST_TEST(p.stats().played == 4U);
    BOOST_TEST(p.stats().late == 2U);
    BOOST_TEST(p.stats().skipped == 0U);
    BOOST_TEST(p.stats().continuity() == 2.0 / 4.0, boost::test_tools::tolerance(1e-9));
    // A chunk that comes before its due time after the stall is on time again.
    s.insert(make(60));
    BOOST_TEST(poll(p, t0 + 7s, s).size() == 57U);  // 4-59 skipped at 60's due time (7 s), 60 played
    BOOST_TEST(p.stats().late == 2U);
    BOOST_TEST(p.stats().skipped == 56U);
}

// A joiner fetches its first chunks at once and the first arrives 400 ms after its due time: the lag
// grows by that, and the next one, which arrives 350 ms after its old due time, plays on time.
BOOST_AUTO_TEST_CASE(a_late_first_chunk_sets_the_clock) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    BOOST_TEST(poll(p, t0 + 1100ms, s).empty());
    s.insert(make(0));
    BOOST_TEST(poll(p, t0 + 1400ms, s).size() == 1U);  // played 400 ms after its due time
    BOOST_TEST((p.lag() == 1400ms));
    s.insert(make(1));
    BOOST_TEST(poll(p, t0 + 1450ms, s).empty());       // due at 1.5 s now, not at 1.1 s
    BOOST_TEST(poll(p, t0 + 1500ms, s).size() == 1U);
    BOOST_TEST(p.stats().late == 0U);
    BOOST_TEST(p.stats().continuity() == 1.0, boost::test_tools::tolerance(1e-9));
    // Later lateness is lateness: the clock is set once.
    s.insert(make(2));
    BOOST_TEST(poll(p, t0 + 1900ms, s).size() == 1U);  // 300 ms after its due time
    BOOST_TEST(p.stats().late == 1U);
    BOOST_TEST((p.lag() == 1400ms));
}

// The tolerance is a bound: played exactly that long after the due time is on time, any later is late.
BOOST_AUTO_TEST_CASE(late_means_more_than_the_tolerance_after_the_due_time) {
    peer::chunk_store s(64);
    peer::playout p;
    p.set_late_tolerance(50ms);
    BOOST_TEST((p.late_tolerance() == 50ms));
    p.start(core::chunk_id{0}, 1s, w0, t0);
    s.insert(make(0));
    s.insert(make(1));
    s.insert(make(2));
    BOOST_TEST(poll(p, t0 + 1s, s).size() == 1U);      // 0: on time
    BOOST_TEST(poll(p, t0 + 1150ms, s).size() == 1U);  // 1: 50 ms after its due time
    BOOST_TEST(p.stats().late == 0U);
    BOOST_TEST(poll(p, t0 + 1251ms, s).size() == 1U);  // 2: 51 ms after
    BOOST_TEST(p.stats().late == 1U);
    BOOST_TEST(p.stats().continuity() == 2.0 / 3.0, boost::test_tools::tolerance(1e-9));
    BOOST_TEST((peer::playout::default_late_tolerance == 200ms));
}

// The source pauses (no neighbour has anything newer): nothing is skipped however long it lasts, and
// the stream resumes where it stopped.
BOOST_AUTO_TEST_CASE(a_source_pause_skips_nothing) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 1s, w0, t0);
    p.set_interval(100ms);
    s.insert(make(0));
    p.set_live_edge(core::chunk_id{0});
    BOOST_TEST(poll(p, t0 + 1s, s).size() == 1U);
    BOOST_TEST(poll(p, t0 + 60s, s).empty());
    BOOST_TEST(!p.next_deadline(s).has_value());
    auto c = std::make_shared<wire::chunk>(*make(1));
    c->timestamp = w0 + 59'000'000;  // cut after the pause
    s.insert(c);
    p.set_live_edge(core::chunk_id{1});
    const auto ev = poll(p, t0 + 60s, s);
    BOOST_TEST_REQUIRE(ev.size() == 1U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::play));
    BOOST_TEST(p.stats().skipped == 0U);
}

BOOST_AUTO_TEST_CASE(starts_at_a_random_access_chunk_whose_header_is_held) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{10}, 1s, w0, t0);
    s.insert(make(10, false, 0, 5));
    s.insert(make(11, true, 0, 5));  // random access, but header 5 not held
    s.insert(make(12, true, 0, 5));
    auto ev = poll(p, t0 + 2s + 100ms, s);  // 10 passed over (not RA); 11 due but no header
    BOOST_TEST(ev.empty());
    BOOST_TEST(p.next().value() == 12U);    // 11's time passed without its header
    s.insert(make(5, false, wire::chunk::flag_header));
    ev = poll(p, t0 + 2s + 200ms, s);
    BOOST_TEST_REQUIRE(ev.size() == 1U);
    BOOST_TEST(ev[0].id.value() == 12U);
    BOOST_TEST(p.stats().skipped == 0U);    // nothing counted before playback started
    BOOST_TEST(p.stats().passed_over == 2U);
}

BOOST_AUTO_TEST_CASE(end_of_stream_ends_playback) {
    peer::chunk_store s(64);
    peer::playout p;
    p.start(core::chunk_id{0}, 0s, w0, t0);
    s.insert(make(0));
    s.insert(make(1, true, wire::chunk::flag_end_of_stream));
    s.insert(make(2));
    BOOST_TEST(poll(p, t0, s).size() == 1U);
    const auto ev = poll(p, t0 + 10s, s);
    BOOST_TEST_REQUIRE(ev.size() == 2U);
    BOOST_TEST((ev[0].what == peer::playout_event::kind::play));
    BOOST_TEST((ev[1].what == peer::playout_event::kind::end));
    BOOST_TEST(p.ended());
    BOOST_TEST(poll(p, t0 + 20s, s).empty());
}

BOOST_AUTO_TEST_SUITE_END()
