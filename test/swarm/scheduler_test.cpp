#include "pixtream/swarm/scheduler.hpp"

#include "helpers.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

using namespace swarm_test;
using swarm::action;
using swarm::action_kind;
using swarm::scheduler;
using swarm::scheduler_config;

namespace {

// A config whose timeouts stay out of the way unless a test wants them.
scheduler_config config(std::size_t limit = 8, std::size_t window = 64, std::uint64_t seed = 1) {
    scheduler_config c;
    c.window = window;
    c.seed = seed;
    c.pipeline.max_in_flight_per_peer = limit;
    return c;
}

void no_timeouts(scheduler_config& c) {
    c.pipeline.request_timeout = 60s;
    c.pipeline.min_timeout = 60s;
    c.pipeline.max_timeout = 60s;
}

action request(unsigned p, std::uint64_t id) { return action{action_kind::request, peer(p), cid(id)}; }
action cancel(unsigned p, std::uint64_t id) { return action{action_kind::cancel, peer(p), cid(id)}; }

// Chunk `id` is held by `peers` (announced with HAVE).
struct holding {
    std::uint64_t id;
    std::vector<unsigned> peers;
};

void announce(scheduler& s, const std::vector<holding>& holdings) {
    for (const auto& h : holdings) {
        for (auto p : h.peers) s.on_have(peer(p), cid(h.id));
    }
}

// Requests per peer among `actions`.
std::map<unsigned, std::size_t> per_peer(const std::vector<action>& actions) {
    std::map<unsigned, std::size_t> out;
    for (const auto& a : requests(actions)) ++out[std::to_integer<unsigned>(a.peer.bytes()[0])];
    return out;
}

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (auto i = from; i < to; ++i) out.push_back(i);
    return out;
}

// Peer `p`'s outstanding requests.
std::vector<std::uint64_t> outstanding(const scheduler& s, unsigned p) {
    std::vector<std::uint64_t> out;
    if (const auto* st = s.requests().find(peer(p))) {
        for (const auto& r : st->in_flight) out.push_back(r.id.value());
    }
    return sorted(out);
}

// Checks what must hold after any poll: requests go to holders with a free slot, for chunks we lack in
// the window (due or not: the playout gives chunks up), at most one duplicate per chunk; CANCELled
// requests are gone.
void check_invariants(const scheduler& s, const std::vector<action>& actions) {
    const auto limit = s.requests().limit();
    for (const auto& a : actions) {
        BOOST_TEST_CONTEXT(a) {
            if (a.kind == action_kind::request) {
                BOOST_TEST(s.holdings().holds(a.peer, a.id));
                BOOST_TEST(!s.has(a.id));
                BOOST_TEST(a.id >= s.playhead());
                BOOST_TEST(a.id < s.window_end());
            } else {
                BOOST_TEST(!s.requests().is_in_flight(a.peer, a.id));
            }
        }
    }
    std::map<std::uint64_t, std::size_t> per_chunk;
    std::size_t total = 0;
    s.requests().for_each_peer([&](const core::peer_id& p, const swarm::request_pipeline::peer_state& st) {
        BOOST_TEST_CONTEXT(p) { BOOST_TEST(st.in_flight.size() <= limit); }
        total += st.in_flight.size();
        for (const auto& r : st.in_flight) ++per_chunk[r.id.value()];
    });
    BOOST_TEST(total == s.in_flight_total());
    for (auto [id, n] : per_chunk) {
        BOOST_TEST_CONTEXT("chunk " << id) {
            BOOST_TEST(n <= (s.config().endgame ? 2U : 1U));
            BOOST_TEST(s.requests().in_flight_count(cid(id)) == n);
        }
    }
}

// A scripted random session; returns every action the scheduler emitted. Same seeds, same log.
std::vector<action> run_session(std::uint64_t scheduler_seed, std::uint64_t script_seed, int steps = 600,
                                bool check = false) {
    auto cfg = config(4, 128, scheduler_seed);
    cfg.pipeline.request_timeout = 1s;
    cfg.pipeline.retry_penalty = 500ms;
    scheduler s(cfg, cid(1000));
    s.set_deadlines({cid(1000), t0 + 4s, 100ms});
    std::mt19937_64 gen(script_seed);
    const unsigned peers = 6;
    auto now = t0;
    std::vector<action> log;
    std::vector<action> out;
    for (int step = 0; step < steps; ++step) {
        const auto p = static_cast<unsigned>(1 + gen() % peers);
        const auto base = s.playhead().value();
        switch (gen() % 12) {
        case 0: {
            const auto b = base - 20 + gen() % 60;
            core::buffer_map m(256, cid(b));
            for (int k = 0; k < 80; ++k) m.set(cid(b + gen() % 200));
            s.on_bitmap(peer(p), m);
            break;
        }
        case 1: s.remove_peer(peer(p)); break;
        case 2: {
            // The player lags its deadlines by a second; chunks due meanwhile are missed.
            const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(now - t0 - 5s).count() / 100;
            if (due > 0) s.set_window(cid(1000 + static_cast<std::uint64_t>(due)));
            break;
        }
        case 3:
            if (gen() % 2 == 0) {
                s.set_have(cid(base + gen() % 150));
            } else {
                s.on_chunk(peer(p), cid(base + gen() % 150), 1000, now);  // pushed
            }
            break;
        case 4: {
            const auto mine = outstanding(s, p);
            if (!mine.empty()) s.on_reject(peer(p), cid(mine[gen() % mine.size()]), now);
            break;
        }
        case 5:
        case 6:
        case 7: {
            const auto mine = outstanding(s, p);
            if (!mine.empty()) s.on_chunk(peer(p), cid(mine[gen() % mine.size()]), 1000, now);
            break;
        }
        case 8: now += std::chrono::milliseconds(gen() % 400); break;
        default: s.on_have(peer(p), cid(base + gen() % 300)); break;
        }
        if (gen() % 3 == 0) {
            out.clear();
            s.poll(now, out);
            if (check) {
                BOOST_TEST_CONTEXT("step " << step) { check_invariants(s, out); }
            }
            log.insert(log.end(), out.begin(), out.end());
        }
    }
    return log;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(scheduler_suite)

BOOST_AUTO_TEST_CASE(pick_order_deadline_first_then_rarest_first) {
    // With deadlines, chunk k is due at t0 + (k + 1) s; at t0 with a 3 s horizon, chunks 0..2 are urgent.
    struct test_case {
        const char* name;
        bool deadlines;
        std::vector<holding> holdings;
        std::vector<std::uint64_t> order;
    };
    const test_case cases[] = {
        {"1 holder before 3 holders", false, {{10, {1, 2, 3}}, {20, {1}}}, {20, 10}},
        {"by holder count, not id", false, {{1, {1, 2, 3}}, {2, {1, 2}}, {3, {1}}}, {3, 2, 1}},
        {"1 < 2 < 4 holders", false, {{3, {1, 2}}, {4, {1, 2, 3, 4}}, {60, {3}}}, {60, 3, 4}},
        {"urgent before a rarer non-urgent chunk", true, {{1, {1, 2, 3}}, {10, {1}}}, {1, 10}},
        {"urgent ones in id order whatever their rarity", true,
         {{0, {1, 2, 3}}, {1, {1, 2}}, {2, {1}}, {20, {2}}}, {0, 1, 2, 20}},
        {"beyond the horizon, rarest first", true, {{2, {1, 2, 3}}, {3, {1, 2, 3}}, {4, {1}}}, {2, 4, 3}},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scheduler s(config());
            if (c.deadlines) s.set_deadlines({cid(0), t0 + 1s, 1s});
            announce(s, c.holdings);
            const auto out = s.poll(t0);
            BOOST_TEST(cancels(out).empty());
            BOOST_TEST(ids_of(requests(out)) == c.order, boost::test_tools::per_element());
            check_invariants(s, out);
        }
    }
}

BOOST_AUTO_TEST_CASE(rarest_first_when_only_one_slot_is_free) {
    // Peer 1 has one free slot; chunk 20 (1 holder) wins over chunk 10 (3 holders, the others busy).
    auto cfg = config(1);
    scheduler s(cfg);
    announce(s, {{30, {2}}, {31, {3}}});
    BOOST_TEST(requests(s.poll(t0)).size() == 2U);  // peers 2 and 3 now full
    announce(s, {{10, {1, 2, 3}}, {20, {1}}});
    BOOST_TEST(s.holders(cid(10)) == 3U);
    const auto out = s.poll(t0);
    BOOST_TEST(out == std::vector<action>{request(1, 20)}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(per_peer_limit_is_respected_across_many_polls) {
    auto cfg = config(3);
    no_timeouts(cfg);
    scheduler s(cfg);
    for (unsigned p = 1; p <= 4; ++p) s.on_bitmap(peer(p), range_map(0, 0, 64));
    auto out = s.poll(t0);
    BOOST_TEST(requests(out).size() == 12U);
    BOOST_TEST(s.poll(t0).empty());  // nothing more until a slot frees
    for (int step = 1; step <= 40; ++step) {
        BOOST_TEST_CONTEXT("step " << step) {
            const auto now = t0 + step * 50ms;
            const auto p = static_cast<unsigned>(1 + step % 4);
            const auto mine = outstanding(s, p);
            BOOST_REQUIRE(!mine.empty());
            BOOST_TEST(s.on_chunk(peer(p), cid(mine.front()), 1000, now));
            out = s.poll(now);
            // The freed slot is refilled, at that peer (every peer holds everything), and no other.
            BOOST_TEST(out == std::vector<action>{request(p, out.empty() ? 0 : out[0].id.value())},
                       boost::test_tools::per_element());
            for (unsigned q = 1; q <= 4; ++q) BOOST_TEST(s.in_flight(peer(q)) == 3U);
            check_invariants(s, out);
        }
    }
}

BOOST_AUTO_TEST_CASE(timeout_frees_the_slot_and_retries_at_another_holder) {
    scheduler s(config());  // 2 s timeout for unmeasured peers, 2 s penalty
    announce(s, {{5, {1, 2}}});
    const auto first = s.poll(t0);
    BOOST_REQUIRE(first.size() == 1U);
    const auto p = std::to_integer<unsigned>(first[0].peer.bytes()[0]);
    const auto q = 3 - p;
    BOOST_TEST(ms(s.next_timeout()) == 2000);
    BOOST_TEST(s.poll(t0 + 2s - 1ms).empty());

    auto out = s.poll(t0 + 2s);
    BOOST_TEST(out == (std::vector<action>{cancel(p, 5), request(q, 5)}), boost::test_tools::per_element());
    BOOST_TEST(s.in_flight(peer(p)) == 0U);
    BOOST_TEST(s.in_flight(peer(q)) == 1U);
    BOOST_TEST(s.stats().timeouts == 1U);

    // The second holder times out too; by then the first one's penalty is over.
    out = s.poll(t0 + 4s);
    BOOST_TEST(out == (std::vector<action>{cancel(q, 5), request(p, 5)}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reject_retries_elsewhere_at_once) {
    scheduler s(config());
    announce(s, {{5, {1, 2}}});
    const auto first = s.poll(t0);
    BOOST_REQUIRE(first.size() == 1U);
    const auto p = std::to_integer<unsigned>(first[0].peer.bytes()[0]);
    const auto q = 3 - p;
    BOOST_TEST(!s.on_reject(peer(q), cid(5), t0));  // not asked there: ignored
    BOOST_TEST(s.on_reject(peer(p), cid(5), t0 + 10ms));
    BOOST_TEST(s.poll(t0 + 10ms) == std::vector<action>{request(q, 5)}, boost::test_tools::per_element());

    // Both refused: nobody is asked until a penalty ends, and next_timeout says when.
    BOOST_TEST(s.on_reject(peer(q), cid(5), t0 + 20ms));
    BOOST_TEST(s.poll(t0 + 20ms).empty());
    BOOST_TEST(ms(s.next_timeout()) == 310);  // the reject penalty (300 ms) of the first
    BOOST_TEST(s.poll(t0 + 310ms) == std::vector<action>{request(p, 5)}, boost::test_tools::per_element());
    BOOST_TEST(s.stats().rejects == 2U);
}

BOOST_AUTO_TEST_CASE(a_deferred_chunk_is_not_requested_before_its_time) {
    auto c = config();
    no_timeouts(c);
    scheduler s(c);
    // Chunk 5 is urgent (due within the horizon), chunk 40 is not: both wait while deferred.
    s.set_deadlines({cid(0), t0 + 1s, 100ms});
    announce(s, {{5, {1}}, {6, {1}}, {40, {1}}});
    s.defer(cid(5), t0 + 300ms);
    s.defer(cid(40), t0 + 200ms);
    s.defer(cid(500), t0 + 200ms);  // beyond the window: ignored
    BOOST_TEST(s.deferred(cid(5), t0));
    BOOST_TEST(!s.deferred(cid(5), t0 + 300ms));
    BOOST_TEST(!s.deferred(cid(500), t0));
    BOOST_TEST(s.poll(t0) == std::vector<action>{request(1, 6)}, boost::test_tools::per_element());
    BOOST_TEST(ms(s.next_timeout()) == 200);
    BOOST_TEST(s.poll(t0 + 199ms).empty());
    BOOST_TEST(s.poll(t0 + 200ms) == std::vector<action>{request(1, 40)}, boost::test_tools::per_element());
    BOOST_TEST(ms(s.next_timeout()) == 300);
    BOOST_TEST(s.poll(t0 + 300ms) == std::vector<action>{request(1, 5)}, boost::test_tools::per_element());
    BOOST_TEST(ms(s.next_timeout()) == 60'000);
    // Held (the push came): the deferral is gone, and a held chunk cannot be deferred.
    announce(s, {{7, {1}}});
    s.defer(cid(7), t0 + 10s);
    s.set_have(cid(7));
    BOOST_TEST(!s.deferred(cid(7), t0 + 400ms));
    s.defer(cid(7), t0 + 10s);
    BOOST_TEST(!s.deferred(cid(7), t0 + 400ms));
    BOOST_TEST(s.poll(t0 + 400ms).empty());
}

BOOST_AUTO_TEST_CASE(peer_gone_its_chunks_are_requested_elsewhere) {
    scheduler s(config());
    for (unsigned p = 1; p <= 3; ++p) s.on_bitmap(peer(p), range_map(0, 0, 8));
    const auto out = s.poll(t0);
    BOOST_TEST(sorted(ids_of(requests(out))) == iota(0, 8), boost::test_tools::per_element());
    const auto lost = outstanding(s, 1);
    BOOST_REQUIRE(!lost.empty());

    s.remove_peer(peer(1));
    BOOST_TEST(!s.has_peer(peer(1)));
    BOOST_TEST(s.in_flight(peer(1)) == 0U);
    for (std::uint64_t id = 0; id < 8; ++id) BOOST_TEST(s.holders(cid(id)) == 2U);
    const auto again = s.poll(t0 + 10ms);
    BOOST_TEST(cancels(again).empty());
    BOOST_TEST(sorted(ids_of(again)) == lost, boost::test_tools::per_element());
    for (const auto& a : again) BOOST_TEST(a.peer != peer(1));
    for (std::uint64_t id = 0; id < 8; ++id) BOOST_TEST(s.requests().in_flight_count(cid(id)) == 1U);
    check_invariants(s, again);
}

BOOST_AUTO_TEST_CASE(chunks_we_have_or_below_the_playhead_are_never_requested) {
    scheduler s(config(64), cid(100));
    s.on_bitmap(peer(1), range_map(90, 90, 131));
    s.set_have(cid(101));
    s.set_have(cid(105));
    s.set_have(cid(50));  // below the playhead: ignored
    BOOST_TEST(!s.has(cid(50)));
    auto want = iota(100, 131);
    std::erase_if(want, [](std::uint64_t id) { return id == 101 || id == 105; });
    auto out = s.poll(t0);
    BOOST_TEST(sorted(ids_of(requests(out))) == want, boost::test_tools::per_element());

    // The playhead moves to 110: requests below it are cancelled; nothing below it is asked again.
    s.set_window(cid(110));
    s.set_window(cid(105));  // never back
    BOOST_TEST(s.playhead() == cid(110));
    s.on_bitmap(peer(2), range_map(100, 100, 140));
    out = s.poll(t0 + 10ms);
    BOOST_TEST(sorted(ids_of(cancels(out))) == (std::vector<std::uint64_t>{100, 102, 103, 104, 106, 107, 108, 109}),
               boost::test_tools::per_element());
    BOOST_TEST(sorted(ids_of(requests(out))) == iota(131, 140), boost::test_tools::per_element());
    check_invariants(s, out);
}

BOOST_AUTO_TEST_CASE(passed_deadline_chunks_are_counted_once_and_still_requested) {
    // Chunk k is due at t0 + k * 100 ms; everything held by one peer is urgent (3 s horizon).
    struct test_case {
        core::duration now;
        std::vector<std::uint64_t> had;
        std::uint64_t missed;  // chunks counted as missed
    };
    const test_case cases[] = {
        {450ms, {}, 5},
        {500ms, {}, 6},  // due exactly now: too late
        {450ms, {2}, 4},
        {-1s, {}, 0},
        {5s, {}, 51},  // every chunk of the window due by then counts, held by a neighbour or not
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT("now t0+" << core::to_seconds(c.now) << "s") {
            scheduler s(config(64));
            s.set_deadlines({cid(0), t0, 100ms});
            for (auto id : c.had) s.set_have(cid(id));
            s.on_bitmap(peer(1), range_map(0, 0, 20));
            const auto out = s.poll(t0 + c.now);
            std::vector<std::uint64_t> wanted;
            for (std::uint64_t id = 0; id < 20; ++id) {
                if (std::find(c.had.begin(), c.had.end(), id) == c.had.end()) wanted.push_back(id);
            }
            BOOST_TEST(sorted(ids_of(requests(out))) == wanted, boost::test_tools::per_element());
            BOOST_TEST(s.stats().missed_deadline == c.missed);
            s.poll(t0 + c.now);
            BOOST_TEST(s.stats().missed_deadline == c.missed);  // each chunk counted once
        }
    }
}

// A chunk past its modelled deadline is still fetched, ahead of everything else (the playout, not the
// model, decides when it is given up), and a REJECT for it is retried elsewhere at once.
BOOST_AUTO_TEST_CASE(a_chunk_past_its_modelled_deadline_is_still_fetched_first) {
    auto cfg = config(8);
    no_timeouts(cfg);  // (endgame on: late chunks get no duplicates, so the retry below is all there is)
    scheduler s(cfg);
    s.set_deadlines({cid(0), t0 + 1s, 100ms});  // chunk k due at t0 + 1 s + k * 100 ms
    s.on_bitmap(peer(1), range_map(0, 0, 4));
    s.on_bitmap(peer(2), range_map(0, 0, 4));
    const auto late = t0 + 1150ms;  // 0 and 1 are past their deadlines
    const auto first = requests(s.poll(late));
    BOOST_TEST(sorted(ids_of(first)) == iota(0, 4), boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(!first.empty());
    BOOST_TEST(first[0].id.value() == 0U);  // the latest first
    BOOST_TEST(s.stats().missed_deadline == 2U);
    const auto holder = first[0].peer;
    const auto other = holder == peer(1) ? peer(2) : peer(1);
    s.on_reject(holder, cid(0), late);
    const auto retry = s.poll(late);
    BOOST_TEST(retry == std::vector<action>{(action{action_kind::request, other, cid(0)})}, boost::test_tools::per_element());
    BOOST_TEST(s.stats().missed_deadline == 2U);  // counted once
    // The playout gives 0 up: the window moves and its request is CANCELled.
    s.set_window(cid(1));
    BOOST_TEST(s.poll(late) == std::vector<action>{(action{action_kind::cancel, other, cid(0)})}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bitmaps_with_other_bases) {
    scheduler s(config(64), cid(100));  // window [100, 164)
    s.on_bitmap(peer(1), range_map(40, 90, 110));
    s.on_bitmap(peer(2), range_map(150, 150, 200));
    BOOST_TEST(s.holders(cid(99)) == 0U);
    BOOST_TEST(s.holders(cid(100)) == 1U);
    BOOST_TEST(s.holders(cid(163)) == 1U);
    BOOST_TEST(s.holders(cid(170)) == 0U);
    auto want = iota(100, 110);
    const auto rest = iota(150, 164);
    want.insert(want.end(), rest.begin(), rest.end());
    const auto out = s.poll(t0);
    BOOST_TEST(sorted(ids_of(out)) == want, boost::test_tools::per_element());
    // Moving the window brings peer 2's remembered ids into play.
    s.set_window(cid(170));
    BOOST_TEST(s.holders(cid(199)) == 1U);
    const auto more = s.poll(t0);
    BOOST_TEST(sorted(ids_of(requests(more))) == iota(170, 200), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(have_beyond_the_window_is_used_once_the_window_gets_there) {
    scheduler s(config(), cid(100));
    s.on_have(peer(1), cid(300));
    BOOST_TEST(s.holders(cid(300)) == 0U);
    BOOST_TEST(s.poll(t0).empty());
    s.set_window(cid(260));
    BOOST_TEST(s.holders(cid(300)) == 1U);
    BOOST_TEST(s.poll(t0) == std::vector<action>{request(1, 300)}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(same_seed_same_decisions) {
    const auto a = run_session(42, 7);
    const auto b = run_session(42, 7);
    BOOST_TEST(a.size() > 100U);
    BOOST_TEST(a == b, boost::test_tools::per_element());
    // The seed does steer the tie-breaks.
    bool differs = false;
    for (std::uint64_t seed = 1; seed <= 4 && !differs; ++seed) differs = run_session(seed, 7) != a;
    BOOST_TEST(differs);
}

BOOST_AUTO_TEST_CASE(random_sessions_keep_the_invariants) {
    for (std::uint64_t script = 1; script <= 5; ++script) {
        BOOST_TEST_CONTEXT("script " << script) { run_session(script, script, 1500, true); }
    }
}

BOOST_AUTO_TEST_CASE(load_is_spread_over_equal_holders) {
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
        BOOST_TEST_CONTEXT("seed " << seed) {
            scheduler s(config(8, 64, seed));
            for (unsigned p = 1; p <= 4; ++p) s.on_bitmap(peer(p), range_map(0, 0, 8));
            const auto out = s.poll(t0);
            BOOST_TEST(requests(out).size() == 8U);
            const auto spread = per_peer(out);
            BOOST_TEST(spread.size() == 4U);
            for (auto [p, n] : spread) BOOST_TEST_CONTEXT("peer " << p) { BOOST_TEST(n == 2U); }
        }
    }
}

BOOST_AUTO_TEST_CASE(faster_peer_by_measured_delivery_is_preferred) {
    struct test_case {
        unsigned fast;
        unsigned slow;
    };
    for (const auto c : {test_case{1, 2}, test_case{2, 1}}) {
        BOOST_TEST_CONTEXT("fast peer " << c.fast) {
            scheduler s(config());
            announce(s, {{0, {c.fast}}, {1, {c.slow}}});
            BOOST_TEST(requests(s.poll(t0)).size() == 2U);
            BOOST_TEST(s.on_chunk(peer(c.fast), cid(0), 1000, t0 + 50ms));
            BOOST_TEST(s.on_chunk(peer(c.slow), cid(1), 1000, t0 + 500ms));
            announce(s, {{2, {1, 2}}, {3, {1, 2}}, {4, {1, 2}}});
            const auto out = s.poll(t0 + 500ms);
            // 50, 100, 150 ms expected at the fast peer beat 500 ms at the slow one.
            BOOST_TEST(sorted(ids_of(requests(out))) == iota(2, 5), boost::test_tools::per_element());
            BOOST_TEST(per_peer(out).size() == 1U);
            BOOST_TEST(per_peer(out)[c.fast] == 3U);
        }
    }
}

BOOST_AUTO_TEST_CASE(endgame_duplicates_a_late_urgent_request_then_cancels_it) {
    for (const bool endgame : {true, false}) {
        BOOST_TEST_CONTEXT("endgame " << endgame) {
            auto cfg = config();
            cfg.endgame = endgame;
            scheduler s(cfg);
            s.set_deadlines({cid(0), t0 + 1s, 1s});  // chunk 0 due at t0 + 1 s
            announce(s, {{0, {1}}, {1, {2}}});
            BOOST_TEST(s.poll(t0) == (std::vector<action>{request(1, 0), request(2, 1)}),
                       boost::test_tools::per_element());
            BOOST_TEST(s.on_chunk(peer(2), cid(1), 1000, t0 + 50ms));  // peer 2 delivers in 50 ms

            // At t0 + 900 ms chunk 0 is still missing at peer 1 (it would take past its deadline); peer 2 has it.
            s.on_have(peer(2), cid(0));
            const auto out = s.poll(t0 + 900ms);
            if (!endgame) {
                BOOST_TEST(out.empty());
                continue;
            }
            BOOST_TEST(out == std::vector<action>{request(2, 0)}, boost::test_tools::per_element());
            BOOST_TEST(s.requests().in_flight_count(cid(0)) == 2U);
            BOOST_TEST(s.stats().duplicate_requests == 1U);
            BOOST_TEST(s.poll(t0 + 910ms).empty());  // one duplicate at most

            BOOST_TEST(s.on_chunk(peer(2), cid(0), 1000, t0 + 950ms));
            BOOST_TEST(s.poll(t0 + 950ms) == std::vector<action>{cancel(1, 0)}, boost::test_tools::per_element());
            BOOST_TEST(!s.is_in_flight(cid(0)));
            BOOST_TEST(s.stats().cancels == 1U);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_chunk_obtained_elsewhere_cancels_its_request) {
    scheduler s(config());
    announce(s, {{5, {1}}});
    BOOST_TEST(s.poll(t0) == std::vector<action>{request(1, 5)}, boost::test_tools::per_element());
    s.set_have(cid(5));  // pushed by the source, say
    BOOST_TEST(!s.is_in_flight(cid(5)));
    BOOST_TEST(s.poll(t0) == std::vector<action>{cancel(1, 5)}, boost::test_tools::per_element());
    // A late CHUNK for it is still accepted, as unsolicited.
    BOOST_TEST(!s.on_chunk(peer(1), cid(5), 1000, t0 + 1s));
    BOOST_TEST(s.stats().unsolicited == 1U);
}

BOOST_AUTO_TEST_CASE(unknown_peers_and_bad_models) {
    scheduler s(config());
    BOOST_TEST(!s.on_reject(peer(9), cid(1), t0));
    BOOST_TEST(!s.on_chunk(peer(9), cid(1), 10, t0));  // still ours
    BOOST_TEST(s.has(cid(1)));
    s.remove_peer(peer(9));
    BOOST_TEST(s.peer_count() == 0U);
    BOOST_TEST(s.in_flight(peer(9)) == 0U);
    BOOST_TEST(!s.next_timeout().has_value());
    BOOST_CHECK_THROW(s.set_deadlines({cid(0), t0, core::duration::zero()}), std::invalid_argument);
    BOOST_TEST(!s.deadlines().has_value());
}

BOOST_AUTO_TEST_CASE(config_is_clamped) {
    auto cfg = config(500, 100);
    scheduler s(cfg);
    BOOST_TEST(s.config().window == 128U);
    BOOST_TEST(s.config().pipeline.max_in_flight_per_peer == 64U);
    BOOST_TEST(s.window_end() == cid(128));
}

BOOST_AUTO_TEST_SUITE_END()
