#include "pixtream/swarm/push_tree.hpp"

#include "helpers.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <vector>

using namespace swarm_test;
using swarm::push_tree;
using swarm::push_tree_config;
using swarm::tree_action;
using swarm::tree_action_kind;

namespace pixtream::swarm {
inline std::ostream& boost_test_print_type(std::ostream& os, const tree_action& a) {
    return os << (a.kind == tree_action_kind::subscribe ? "SUBSCRIBE " : "GRANT ") << a.mask << " @"
              << a.peer.to_hex().substr(0, 2);
}
}  // namespace pixtream::swarm

namespace {

tree_action subscribe(unsigned p, std::uint32_t mask) { return {tree_action_kind::subscribe, peer(p), mask}; }
tree_action grant(unsigned p, std::uint32_t mask) { return {tree_action_kind::grant, peer(p), mask}; }

// Two substreams (even ids: 0, odd ids: 1), and a refusal that is not retried during a test.
push_tree_config two() {
    push_tree_config c;
    c.substreams = 2;
    c.refused_backoff = 60s;
    return c;
}

std::vector<tree_action> poll(push_tree& t, core::time_point now) {
    std::vector<tree_action> out;
    t.poll(now, out);
    return out;
}

// The first byte of substream s's parent (0: none).
unsigned parent_of(const push_tree& t, unsigned s) {
    const auto p = t.parent(s);
    return p ? std::to_integer<unsigned>(p->bytes()[0]) : 0U;
}

std::int64_t score_ms(const push_tree& t, unsigned p, unsigned s) {
    const auto sc = t.score(peer(p), s);
    return sc ? std::chrono::duration_cast<std::chrono::milliseconds>(*sc).count() : -1;
}

// Chunk `id` announced (HAVE) by each of `peers` at t, t + step, t + 2 step ... with `cost` to fetch.
void heard_in_turn(push_tree& t, std::uint64_t id, std::vector<unsigned> peers, core::time_point at,
                   core::duration step, core::duration cost = 0ms) {
    for (auto p : peers) {
        t.on_heard(peer(p), cid(id), cost, at);
        at += step;
    }
}

// Peers 2 and 3; chunk 1 reaches us from peer 3 `gap` after peer 2, which is granted substream 1 at
// t0 + 1 s.
push_tree two_parent_of_odd_ids(core::duration gap) {
    push_tree t(two());
    t.add_peer(peer(2), false);
    t.add_peer(peer(3), false);
    heard_in_turn(t, 1, {2, 3}, t0, gap);
    BOOST_TEST(poll(t, t0 + 1s) == std::vector{subscribe(2, 0b10)});
    t.on_grant(peer(2), 0b10, t0 + 1s);
    return t;
}

// The same (gap 10 ms); then the odd chunks 3 .. `end` (one per
// `spacing`) reach us from peer 3 `lead` before peer 2's push.
push_tree parent_two_behind_three(std::uint64_t end, core::duration spacing, core::duration lead) {
    auto t = two_parent_of_odd_ids(10ms);
    for (std::uint64_t id = 3; id < end; id += 2) {
        const auto at = t0 + 1s + spacing * static_cast<int>(id);
        t.on_heard(peer(3), cid(id), 0ms, at);
        t.on_heard(peer(2), cid(id), 0ms, at + lead);
    }
    return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(push_tree_suite)

BOOST_AUTO_TEST_CASE(config_is_checked) {
    push_tree_config c;
    c.substreams = 0;
    BOOST_CHECK_THROW(push_tree{c}, std::invalid_argument);
    c.substreams = 33;
    BOOST_CHECK_THROW(push_tree{c}, std::invalid_argument);
    c.substreams = 32;
    const push_tree t(c);
    BOOST_TEST(t.all_substreams() == 0xffffffffU);
    BOOST_TEST(t.substream_of(cid(37)) == 5U);
}

BOOST_AUTO_TEST_CASE(the_source_is_asked_first_and_what_it_refuses_goes_to_the_earliest_neighbour) {
    push_tree t(two());
    t.add_peer(peer(1), true);
    t.add_peer(peer(2), false);
    t.add_peer(peer(3), false);
    // Nothing observed yet: only the source is a candidate, for everything.
    BOOST_TEST(poll(t, t0) == std::vector{subscribe(1, 0b11)});
    BOOST_TEST(!t.pushed_to_us(cid(0)));
    t.on_grant(peer(1), 0b01, t0 + 50ms);  // it has room for substream 0 only
    BOOST_TEST(parent_of(t, 0) == 1U);
    BOOST_TEST(!t.parent(1));
    BOOST_TEST(t.pushed_to_us(cid(4)));
    BOOST_TEST(!t.pushed_to_us(cid(5)));
    BOOST_TEST(t.stats().refusals == 1U);
    BOOST_TEST(poll(t, t0 + 60ms).empty());  // substream 1: nobody observed yet
    // Chunk 1: peer 2 has it 200 ms before peer 3.
    BOOST_TEST(t.on_heard(peer(2), cid(1), 100ms, t0 + 100ms));
    BOOST_TEST(!t.on_heard(peer(3), cid(1), 100ms, t0 + 300ms));
    BOOST_TEST(poll(t, t0 + 1099ms).empty());  // still under observation
    BOOST_TEST(poll(t, t0 + 1100ms) == std::vector{subscribe(2, 0b10)});
    BOOST_TEST(score_ms(t, 2, 1) == 0);
    BOOST_TEST(score_ms(t, 3, 1) == 200);
    BOOST_TEST(score_ms(t, 1, 1) == -1);  // the source announced nothing: unknown, not late
    t.on_grant(peer(2), 0b10, t0 + 1200ms);
    BOOST_TEST(parent_of(t, 1) == 2U);
    BOOST_TEST(t.pushed_to_us(cid(5)));
    BOOST_TEST(t.stats().subscribes == 2U);
    BOOST_TEST(t.stats().parent_changes == 0U);
}

BOOST_AUTO_TEST_CASE(a_better_parent_takes_over_only_after_it_granted_and_the_old_one_is_released) {
    auto t = two_parent_of_odd_ids(200ms);
    // From now on peer 3 has every odd chunk 500 ms before peer 2's push arrives.
    auto at = t0 + 1500ms;
    std::vector<tree_action> out;
    for (std::uint64_t id = 3; id < 31; id += 2, at += 500ms) {
        t.on_heard(peer(3), cid(id), 0ms, at);
        t.on_heard(peer(2), cid(id), 0ms, at + 500ms);
        const auto o = poll(t, at);
        out.insert(out.end(), o.begin(), o.end());
        if (!out.empty()) break;
    }
    // Not before `settle` (3 s) after peer 2 granted; then peer 3 is asked while peer 2 still pushes.
    BOOST_TEST(out == std::vector{subscribe(3, 0b10)});
    BOOST_TEST(ms(at) >= 4000);
    BOOST_TEST(parent_of(t, 1) == 2U);
    BOOST_TEST(poll(t, at + 10ms).empty());  // waiting for the answer
    t.on_grant(peer(3), 0b10, at + 50ms);
    BOOST_TEST(parent_of(t, 1) == 3U);
    BOOST_TEST(t.stats().parent_changes == 1U);
    BOOST_TEST(poll(t, at + 60ms) == std::vector{subscribe(2, 0)});  // peer 2 may stop
}

BOOST_AUTO_TEST_CASE(a_refused_candidate_leaves_the_parent_in_place) {
    auto t = parent_two_behind_three(21, 500ms, 400ms);
    BOOST_TEST(poll(t, t0 + 20s) == std::vector{subscribe(3, 0b10)});
    t.on_grant(peer(3), 0, t0 + 20050ms);
    BOOST_TEST(parent_of(t, 1) == 2U);
    BOOST_TEST(t.stats().refusals == 1U);
    BOOST_TEST(poll(t, t0 + 30s).empty());  // peer 3 is not asked again within refused_backoff
}

BOOST_AUTO_TEST_CASE(a_small_difference_does_not_move_a_parent) {
    auto t = parent_two_behind_three(41, 250ms, 80ms);  // 80 ms later: within switch_margin
    BOOST_TEST(poll(t, t0 + 30s).empty());
    BOOST_TEST(score_ms(t, 2, 1) > 70);
    BOOST_TEST(parent_of(t, 1) == 2U);
}

BOOST_AUTO_TEST_CASE(a_parent_that_does_not_push_is_late_and_a_neighbour_told_first_is_unknown) {
    push_tree t(two());
    t.add_peer(peer(2), false);
    t.add_peer(peer(3), false);
    t.add_peer(peer(4), false);
    heard_in_turn(t, 1, {2, 3, 4}, t0, 50ms);
    BOOST_TEST(poll(t, t0 + 1s) == std::vector{subscribe(2, 0b10)});
    BOOST_TEST(score_ms(t, 4, 1) == 100);
    t.on_grant(peer(2), 0b10, t0 + 1s);
    // Chunk 3 comes from peer 3 only; we told peer 4 about it before it said anything.
    t.on_heard(peer(3), cid(3), 0ms, t0 + 2s);
    t.on_told(peer(4), cid(3));
    (void)poll(t, t0 + 3s);
    BOOST_TEST(score_ms(t, 2, 1) == 300);   // the parent did not push it: `observe` (1 s) late, smoothed
    BOOST_TEST(score_ms(t, 3, 1) == 35);    // 50 ms smoothed towards 0
    BOOST_TEST(score_ms(t, 4, 1) == 100);   // unchanged: its time is unknown
    // Chunk 5 from peer 3 only, peer 4 not told and silent: it did not have it.
    t.on_heard(peer(3), cid(5), 0ms, t0 + 4s);
    (void)poll(t, t0 + 5s);
    BOOST_TEST(score_ms(t, 4, 1) == 370);
}

BOOST_AUTO_TEST_CASE(an_unanswered_subscribe_counts_as_refused) {
    push_tree t(two());
    t.add_peer(peer(1), true);
    t.add_peer(peer(2), false);
    BOOST_TEST(poll(t, t0) == std::vector{subscribe(1, 0b11)});
    heard_in_turn(t, 1, {2}, t0, 0ms);
    BOOST_TEST(poll(t, t0 + 5s).empty());  // answer_timeout not over
    BOOST_TEST(poll(t, t0 + 5001ms) == std::vector{subscribe(2, 0b10)});
    BOOST_TEST(t.stats().refusals == 2U);
    BOOST_TEST(!t.parent(0));
}

BOOST_AUTO_TEST_CASE(a_departed_parent_is_replaced_and_its_candidate_takes_over) {
    auto t = two_parent_of_odd_ids(200ms);
    t.remove_peer(peer(2));
    BOOST_TEST(!t.parent(1));
    BOOST_TEST(poll(t, t0 + 1100ms) == std::vector{subscribe(3, 0b10)});
    t.on_grant(peer(3), 0b10, t0 + 1200ms);
    BOOST_TEST(parent_of(t, 1) == 3U);
}

BOOST_AUTO_TEST_CASE(grants_respect_capacity_per_child_limits_and_loops) {
    push_tree_config c;
    c.substreams = 4;
    c.max_per_child = 2;
    push_tree t(c);
    for (unsigned p = 1; p <= 4; ++p) t.add_peer(peer(p), false);
    BOOST_TEST(t.on_subscribe(peer(1), 0b1111, t0) == 0U);  // no capacity yet
    t.set_capacity(3);
    BOOST_TEST(t.on_subscribe(peer(1), 0b1111, t0) == 0b0011U);  // two per child
    BOOST_TEST(t.on_subscribe(peer(2), 0b1111, t0) == 0b0001U);  // the last slot
    BOOST_TEST(t.on_subscribe(peer(3), 0b0001, t0) == 0U);       // full
    BOOST_TEST(t.granted_total() == 3U);
    BOOST_TEST(t.on_subscribe(peer(1), 0b0010, t0) == 0b0010U);  // drops substream 0: a slot is free
    BOOST_TEST(t.on_subscribe(peer(3), 0b0101, t0) == 0b0001U);
    BOOST_TEST(t.is_child(peer(3), 0));
    BOOST_TEST(!t.is_child(peer(3), 2));
    BOOST_TEST(t.on_subscribe(peer(1), 0xffff0000U, t0) == 0U);  // bits beyond the substreams mean nothing
    BOOST_TEST(t.granted_total() == 2U);
    // Capacity shrinks: the newest grant goes, its child is told.
    t.set_capacity(1);
    BOOST_TEST(poll(t, t0 + 1ms) == std::vector{grant(3, 0)});
    BOOST_TEST(t.stats().revocations == 1U);
    BOOST_TEST(t.granted_to(peer(2)) == 0b0001U);
    t.remove_peer(peer(2));
    BOOST_TEST(t.granted_total() == 0U);
}

BOOST_AUTO_TEST_CASE(the_children_of_one_substream_can_be_limited) {
    push_tree_config c;
    c.substreams = 4;
    c.max_per_child = 1;
    c.max_per_substream = 1;  // as the source grants
    push_tree t(c);
    t.set_capacity(4);
    for (unsigned p = 1; p <= 5; ++p) t.add_peer(peer(p), false);
    BOOST_TEST(t.on_subscribe(peer(1), 0b1111, t0) == 0b0001U);
    BOOST_TEST(t.on_subscribe(peer(2), 0b1111, t0) == 0b0010U);
    BOOST_TEST(t.on_subscribe(peer(3), 0b0010, t0) == 0U);  // substream 1 has its child
    BOOST_TEST(t.on_subscribe(peer(3), 0b1111, t0) == 0b0100U);
    BOOST_TEST(t.on_subscribe(peer(4), 0b1111, t0) == 0b1000U);
    BOOST_TEST(t.on_subscribe(peer(5), 0b1111, t0) == 0U);
}

BOOST_AUTO_TEST_CASE(no_substream_is_granted_to_our_parent_nor_asked_of_our_child) {
    push_tree t(two());
    t.set_capacity(8);
    t.add_peer(peer(2), false);
    t.add_peer(peer(3), false);
    heard_in_turn(t, 1, {2, 3}, t0, 200ms);
    heard_in_turn(t, 2, {3, 2}, t0, 200ms);
    // Peer 3 is our child for substream 1 before we pick parents.
    BOOST_TEST(t.on_subscribe(peer(3), 0b10, t0 + 10ms) == 0b10U);
    const auto out = poll(t, t0 + 1s);
    BOOST_TEST(out.size() == 2U);
    BOOST_TEST((out == std::vector{subscribe(2, 0b10), subscribe(3, 0b01)}));
    // Peer 3 is (being asked to be) our parent for substream 0: it cannot have substream 0 from us.
    BOOST_TEST(t.on_subscribe(peer(3), 0b11, t0 + 1100ms) == 0b10U);
    t.on_grant(peer(2), 0b10, t0 + 1100ms);
    BOOST_TEST(t.on_subscribe(peer(2), 0b11, t0 + 1200ms) == 0b01U);
}

BOOST_AUTO_TEST_CASE(observations_are_bounded_and_counted_once) {
    push_tree_config c = two();
    c.max_observed = 4;
    push_tree t(c);
    t.add_peer(peer(2), false);
    for (std::uint64_t id = 0; id < 10; ++id) BOOST_TEST(t.on_heard(peer(2), cid(id), 0ms, t0));
    BOOST_TEST(!t.on_heard(peer(2), cid(3), 0ms, t0));  // dropped from the observation: not again
    BOOST_TEST(!t.on_heard(peer(2), cid(9), 0ms, t0));  // under observation already
    BOOST_TEST(!t.on_heard(peer(9), cid(11), 0ms, t0));  // not a neighbour
    (void)poll(t, t0 + 1s);
    BOOST_TEST(!t.on_heard(peer(2), cid(8), 0ms, t0 + 1s));  // observed
    BOOST_TEST(score_ms(t, 2, 0) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
