#include "pixtream/swarm/seed_picker.hpp"

#include "helpers.hpp"

#include <boost/test/unit_test.hpp>

#include <map>
#include <stdexcept>
#include <vector>

using namespace swarm_test;
using swarm::seed_picker;
using swarm::seed_picker_config;

namespace {

std::int64_t score_ms(const seed_picker& p, unsigned n) {
    const auto s = p.score(peer(n));
    return s ? std::chrono::duration_cast<std::chrono::milliseconds>(*s).count() : -1;
}

unsigned picked(seed_picker& p, std::vector<unsigned> candidates, core::time_point now) {
    std::vector<core::peer_id> c;
    for (auto n : candidates) c.push_back(peer(n));
    const auto got = p.pick(c, now);
    return got ? std::to_integer<unsigned>(got->bytes()[0]) : 0U;
}

seed_picker_config no_explore() {
    seed_picker_config c;
    c.explore_every = 0;
    return c;
}

// Push `id` to `target` at `at`, then HAVEs from `others` `spread` later: a measured push.
void measured(seed_picker& p, unsigned target, std::uint64_t id, core::time_point at, core::duration spread,
              std::vector<unsigned> others = {8, 9}) {
    p.on_pushed(peer(target), cid(id), at);
    for (auto o : others) p.on_have(peer(o), cid(id), at + spread);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(seed_picker_suite)

BOOST_AUTO_TEST_CASE(spread_time_is_until_the_second_other_neighbour_announces) {
    seed_picker p(no_explore());
    p.on_pushed(peer(1), cid(10), t0);
    p.on_have(peer(2), cid(10), t0 + 100ms);
    p.on_have(peer(1), cid(10), t0 + 150ms);  // the target itself: not spread
    p.on_have(peer(3), cid(11), t0 + 200ms);  // another chunk
    BOOST_TEST(score_ms(p, 1) == -1);
    BOOST_TEST(p.pending() == 1U);
    p.on_have(peer(3), cid(10), t0 + 300ms);
    BOOST_TEST(score_ms(p, 1) == 300);
    BOOST_TEST(p.pending() == 0U);
    BOOST_TEST(p.stats().spread == 1U);
    p.on_have(peer(4), cid(10), t0 + 400ms);  // later HAVEs change nothing
    BOOST_TEST(score_ms(p, 1) == 300);
}

// Two copies of one chunk (push_fanout 2): each HAVE counts once for each, whichever closes first.
BOOST_AUTO_TEST_CASE(each_have_counts_once_per_push) {
    seed_picker p(no_explore());
    p.on_pushed(peer(1), cid(10), t0);
    p.on_pushed(peer(2), cid(10), t0);
    p.on_have(peer(1), cid(10), t0 + 100ms);  // counts for 2 only
    p.on_have(peer(3), cid(10), t0 + 200ms);  // for both: 2 spread at 200 ms, 1 has heard one
    BOOST_TEST(score_ms(p, 2) == 200);
    BOOST_TEST(score_ms(p, 1) == -1);
    BOOST_TEST(p.pending() == 1U);
    p.on_have(peer(4), cid(10), t0 + 300ms);
    BOOST_TEST(score_ms(p, 1) == 300);
    BOOST_TEST(p.pending() == 0U);
}

BOOST_AUTO_TEST_CASE(a_push_not_spread_in_time_counts_the_timeout) {
    seed_picker_config c = no_explore();
    c.timeout = 2s;
    seed_picker p(c);
    p.on_pushed(peer(1), cid(10), t0);
    p.on_have(peer(2), cid(10), t0 + 500ms);
    BOOST_TEST(picked(p, {1, 2}, t0 + 1999ms) != 0U);
    BOOST_TEST(score_ms(p, 1) == -1);
    (void)picked(p, {1, 2}, t0 + 2s);
    BOOST_TEST(score_ms(p, 1) == 2000);
    BOOST_TEST(p.stats().timeouts == 1U);
    p.on_have(peer(3), cid(10), t0 + 2100ms);  // too late: nothing open
    BOOST_TEST(score_ms(p, 1) == 2000);
}

BOOST_AUTO_TEST_CASE(scores_are_smoothed) {
    seed_picker_config c = no_explore();
    c.smoothing = 0.5;
    seed_picker p(c);
    measured(p, 1, 10, t0, 200ms);
    measured(p, 1, 11, t0 + 1s, 1000ms);
    BOOST_TEST(score_ms(p, 1) == 600);
}

BOOST_AUTO_TEST_CASE(the_fastest_spreader_is_picked_and_shares_by_its_open_pushes) {
    seed_picker p(no_explore());
    measured(p, 1, 10, t0, 200ms);
    measured(p, 2, 11, t0, 500ms);
    const auto now = t0 + 1s;
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    // Peer 1 with two pushes open costs 0.2 x 3 = 0.6 s, more than peer 2's 0.5 s.
    p.on_pushed(peer(1), cid(12), now);
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    p.on_pushed(peer(1), cid(13), now);
    BOOST_TEST(picked(p, {1, 2}, now) == 2U);
    // Only candidates count: peer 1 is not one.
    BOOST_TEST(picked(p, {2, 3}, now) == 3U);  // a newcomer costs the best candidate's score: tried first
}

BOOST_AUTO_TEST_CASE(newcomers_are_tried_and_unmeasured_ones_go_round) {
    seed_picker p(no_explore());
    // Nothing measured: in turn, the one picked longest ago first.
    BOOST_TEST(picked(p, {1, 2, 3}, t0) == 1U);
    BOOST_TEST(picked(p, {1, 2, 3}, t0 + 1ms) == 2U);
    BOOST_TEST(picked(p, {1, 2, 3}, t0 + 2ms) == 3U);
    BOOST_TEST(picked(p, {1, 2, 3}, t0 + 3ms) == 1U);
    // A measured slow neighbour loses to a newcomer, which is assumed as good as the best candidate.
    measured(p, 1, 10, t0 + 10ms, 900ms);
    BOOST_TEST(picked(p, {1, 4}, t0 + 1s) == 4U);
}

BOOST_AUTO_TEST_CASE(every_nth_pick_remeasures_the_stalest) {
    seed_picker_config c;
    c.explore_every = 3;
    seed_picker p(c);
    measured(p, 2, 10, t0, 900ms);         // slow, measured first (at 0.9 s)
    measured(p, 1, 11, t0 + 1s, 200ms);    // fast, measured later (at 1.2 s)
    const auto now = t0 + 2s;
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    BOOST_TEST(picked(p, {1, 2}, now) == 2U);  // the third: explore
    BOOST_TEST(p.stats().explores == 1U);
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    // An explore skips a neighbour whose push is still being measured.
    p.on_pushed(peer(2), cid(12), now);
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);
    BOOST_TEST(picked(p, {1, 2}, now) == 1U);  // explore again: 2 is busy being measured, so 1
    BOOST_TEST(p.stats().explores == 2U);
}

BOOST_AUTO_TEST_CASE(a_neighbour_that_left_is_forgotten) {
    seed_picker p(no_explore());
    measured(p, 1, 10, t0, 200ms);
    p.on_pushed(peer(1), cid(11), t0 + 1s);
    p.on_pushed(peer(2), cid(12), t0 + 1s);
    p.forget(peer(1));
    BOOST_TEST(score_ms(p, 1) == -1);
    BOOST_TEST(p.pending() == 1U);
    p.on_have(peer(3), cid(11), t0 + 1100ms);
    p.on_have(peer(4), cid(11), t0 + 1100ms);
    BOOST_TEST(score_ms(p, 1) == -1);
}

BOOST_AUTO_TEST_CASE(observations_are_bounded) {
    seed_picker_config c = no_explore();
    c.max_pending = 4;
    seed_picker p(c);
    for (std::uint64_t i = 0; i < 100; ++i) p.on_pushed(peer(1 + static_cast<unsigned>(i % 3)), cid(i), t0 + std::chrono::milliseconds(i));
    BOOST_TEST(p.pending() == 4U);
    // The oldest were dropped without a score.
    BOOST_TEST(p.stats().timeouts == 0U);
    BOOST_TEST(score_ms(p, 1) == -1);
}

BOOST_AUTO_TEST_CASE(bad_configuration_is_refused) {
    seed_picker_config c;
    c.spread_count = 0;
    BOOST_CHECK_THROW(seed_picker{c}, std::invalid_argument);
    c = {};
    c.timeout = 0s;
    BOOST_CHECK_THROW(seed_picker{c}, std::invalid_argument);
    c = {};
    c.smoothing = 0;
    BOOST_CHECK_THROW(seed_picker{c}, std::invalid_argument);
    c = {};
    c.max_pending = 0;
    BOOST_CHECK_THROW(seed_picker{c}, std::invalid_argument);
    BOOST_TEST(!seed_picker{}.pick({}, t0).has_value());
}

// A source pushing a chunk every 250 ms to one of five viewers that spread it in 300 ms, 400 ms,
// 600 ms, 1.2 s and never (a saturated uplink: the timeout): the slow ones get few pushes, the fast
// ones share the rest, and every viewer is still measured now and then.
BOOST_AUTO_TEST_CASE(a_fake_swarm_sends_most_chunks_to_fast_spreaders) {
    seed_picker p;  // defaults: explore every 20th pick, 2 s timeout
    const std::map<unsigned, core::duration> spread{{1, 300ms}, {2, 400ms}, {3, 600ms}, {4, 1200ms}, {5, 99s}};
    std::vector<core::peer_id> viewers;
    for (const auto& [n, d] : spread) viewers.push_back(peer(n));
    std::multimap<core::time_point, std::uint64_t> haves;  // when the spread HAVEs of a chunk arrive
    std::map<unsigned, int> pushes;
    auto now = t0;
    for (std::uint64_t id = 0; id < 2000; ++id, now += 250ms) {
        for (auto it = haves.begin(); it != haves.end() && it->first <= now; it = haves.erase(it)) {
            p.on_have(peer(8), cid(it->second), it->first);
            p.on_have(peer(9), cid(it->second), it->first);
        }
        const auto target = p.pick(viewers, now);
        BOOST_REQUIRE(target.has_value());
        const auto n = std::to_integer<unsigned>(target->bytes()[0]);
        ++pushes[n];
        p.on_pushed(*target, cid(id), now);
        if (spread.at(n) < 10s) haves.emplace(now + spread.at(n), id);
    }
    BOOST_TEST_MESSAGE("pushes 1..5: " << pushes[1] << ' ' << pushes[2] << ' ' << pushes[3] << ' ' << pushes[4] << ' '
                                       << pushes[5]);
    BOOST_TEST(pushes[1] + pushes[2] > 1400);  // of 2000
    BOOST_TEST(pushes[1] > 400);
    BOOST_TEST(pushes[2] > 400);
    BOOST_TEST(pushes[5] < 100);
    BOOST_TEST(pushes[4] < 150);
    BOOST_TEST(pushes[5] > 10);  // still re-measured
    BOOST_TEST(score_ms(p, 1) == 300);
    BOOST_TEST(score_ms(p, 5) == 2000);
}

BOOST_AUTO_TEST_SUITE_END()
