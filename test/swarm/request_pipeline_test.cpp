#include "pixtream/swarm/request_pipeline.hpp"

#include "helpers.hpp"

#include <boost/test/unit_test.hpp>

using namespace swarm_test;
using swarm::pipeline_config;
using swarm::request_pipeline;
using swarm::request_ref;

BOOST_AUTO_TEST_SUITE(request_pipeline_suite)

BOOST_AUTO_TEST_CASE(in_flight_limit_is_clamped) {
    const std::pair<std::size_t, std::size_t> cases[] = {{0, 1}, {1, 1}, {8, 8}, {64, 64}, {65, 64}, {1000, 64}};
    for (auto [asked, got] : cases) {
        BOOST_TEST_CONTEXT("asked " << asked) {
            pipeline_config c;
            c.max_in_flight_per_peer = asked;
            BOOST_TEST(request_pipeline(c).limit() == got);
        }
    }
}

BOOST_AUTO_TEST_CASE(add_respects_limit_duplicates_and_unknown_peers) {
    pipeline_config c;
    c.max_in_flight_per_peer = 2;
    request_pipeline p(c);
    BOOST_TEST(!p.add(peer(1), cid(1), t0));  // unknown peer
    p.add_peer(peer(1));
    p.add_peer(peer(2));
    BOOST_TEST(p.add(peer(1), cid(1), t0));
    BOOST_TEST(!p.add(peer(1), cid(1), t0));  // already outstanding there
    BOOST_TEST(p.add(peer(1), cid(2), t0));
    BOOST_TEST(!p.has_free_slot(peer(1)));
    BOOST_TEST(!p.add(peer(1), cid(3), t0));  // full
    BOOST_TEST(p.add(peer(2), cid(1), t0));   // the same chunk elsewhere is allowed
    BOOST_TEST(p.in_flight(peer(1)) == 2U);
    BOOST_TEST(p.in_flight_total() == 3U);
    BOOST_TEST(p.in_flight_count(cid(1)) == 2U);
    BOOST_TEST(p.is_in_flight(peer(2), cid(1)));
    BOOST_TEST(!p.is_in_flight(peer(2), cid(2)));
    BOOST_TEST(p.cancel(peer(1), cid(1)));
    BOOST_TEST(!p.cancel(peer(1), cid(1)));
    BOOST_TEST(p.in_flight_count(cid(1)) == 1U);
    BOOST_TEST(p.has_free_slot(peer(1)));
}

BOOST_AUTO_TEST_CASE(delivery_estimate_excludes_queueing) {
    request_pipeline p;
    p.add_peer(peer(1));
    for (std::uint64_t i = 0; i < 3; ++i) p.add(peer(1), cid(i), t0);
    // Three chunks sent together arrive 100 ms apart: each took 100 ms of the neighbour's time.
    BOOST_TEST(p.complete(peer(1), cid(0), 10000, t0 + 100ms));
    BOOST_TEST(p.complete(peer(1), cid(1), 10000, t0 + 200ms));
    BOOST_TEST(p.complete(peer(1), cid(2), 10000, t0 + 300ms));
    BOOST_TEST(!p.complete(peer(1), cid(2), 10000, t0 + 300ms));  // no longer outstanding
    const auto* s = p.find(peer(1));
    BOOST_REQUIRE(s != nullptr);
    BOOST_TEST(s->chunk_time.has_value());
    BOOST_TEST(p.chunk_time(*s) == core::duration(100ms));
    BOOST_TEST(s->bytes_per_second == 100000.0, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(s->completed == 3U);
    BOOST_TEST(p.in_flight_total() == 0U);
}

BOOST_AUTO_TEST_CASE(timeouts_are_fixed_until_measured_then_adaptive) {
    pipeline_config c;  // 2 s unmeasured; factor 4, clamped to [500 ms, 10 s]
    request_pipeline p(c);
    p.add_peer(peer(1));
    p.add(peer(1), cid(0), t0);
    BOOST_TEST(ms(p.find(peer(1))->find(cid(0))->timeout_at) == 2000);
    BOOST_TEST(ms(p.find(peer(1))->find(cid(0))->expected) == 200);  // the prior
    p.complete(peer(1), cid(0), 1000, t0 + 100ms);  // measured: 100 ms per chunk

    struct test_case {
        std::size_t queued;            // requests already outstanding
        core::duration timeout;        // of the next one
    };
    const test_case cases[] = {
        {0, 500ms},   // 4 x 100 ms, raised to the minimum
        {1, 800ms},   // 4 x 2 x 100 ms
        {3, 1600ms},  // 4 x 4 x 100 ms
    };
    for (const auto& tc : cases) {
        BOOST_TEST_CONTEXT("queued " << tc.queued) {
            request_pipeline q(c);
            q.add_peer(peer(1));
            q.add(peer(1), cid(0), t0);
            q.complete(peer(1), cid(0), 1000, t0 + 100ms);
            const auto now = t0 + 1s;
            for (std::uint64_t i = 0; i < tc.queued; ++i) q.add(peer(1), cid(10 + i), now);
            q.add(peer(1), cid(99), now);
            BOOST_TEST((q.find(peer(1))->find(cid(99))->timeout_at - now).count() == tc.timeout.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(expire_frees_penalises_and_slows_the_estimate) {
    request_pipeline p;
    p.add_peer(peer(1));
    p.add_peer(peer(2));
    p.add(peer(1), cid(5), t0);
    p.add(peer(2), cid(6), t0 + 1s);
    BOOST_TEST(ms(p.next_timeout()) == 2000);

    std::vector<request_ref> out;
    p.expire(t0 + 2s - 1ns, out);
    BOOST_TEST(out.empty());
    p.expire(t0 + 2s, out);
    BOOST_REQUIRE(out.size() == 1U);
    BOOST_TEST(out[0] == (request_ref{peer(1), cid(5)}));
    const auto* s = p.find(peer(1));
    BOOST_TEST(s->in_flight.empty());
    BOOST_TEST(s->timeouts == 1U);
    BOOST_TEST(s->penalised(cid(5), t0 + 2s));
    BOOST_TEST(!s->penalised(cid(6), t0 + 2s));
    BOOST_TEST(p.chunk_time(*s) == core::duration(2s));  // the timeout counted as a slow delivery
    BOOST_TEST(!p.is_in_flight(cid(5)));
    // Next: peer 2's request at t0+3s, then peer 1's penalty at t0+4s.
    BOOST_TEST(ms(p.next_timeout()) == 3000);
    out.clear();
    p.expire(t0 + 3s, out);
    BOOST_TEST(ms(p.next_timeout()) == 4000);
    p.expire(t0 + 4s, out);
    BOOST_TEST(!p.find(peer(1))->penalised(cid(5), t0 + 4s));
    BOOST_TEST(p.find(peer(1))->penalties.empty());
}

BOOST_AUTO_TEST_CASE(reject_frees_and_penalises_for_a_while) {
    pipeline_config c;
    c.reject_penalty = 1s;
    c.retry_penalty = 5s;  // for timeouts: not what a REJECT costs
    request_pipeline p(c);
    p.add_peer(peer(1));
    p.add(peer(1), cid(5), t0);
    BOOST_TEST(!p.reject(peer(1), cid(6), t0));  // not outstanding: ignored
    BOOST_TEST(!p.find(peer(1))->penalised(cid(6), t0));
    BOOST_TEST(p.reject(peer(1), cid(5), t0 + 10ms));
    BOOST_TEST(p.in_flight(peer(1)) == 0U);
    BOOST_TEST(p.find(peer(1))->rejects == 1U);
    BOOST_TEST(p.find(peer(1))->penalised(cid(5), t0 + 500ms));
    BOOST_TEST(!p.find(peer(1))->penalised(cid(5), t0 + 1010ms));
    BOOST_TEST(ms(p.next_timeout()) == 1010);
}

BOOST_AUTO_TEST_CASE(remove_peer_and_drop_below_free_requests) {
    request_pipeline p;
    p.add_peer(peer(1));
    p.add_peer(peer(2));
    for (std::uint64_t i = 0; i < 4; ++i) p.add(peer(1), cid(i), t0);
    p.add(peer(2), cid(3), t0);
    std::vector<chunk_id> freed;
    p.remove_peer(peer(1), &freed);
    BOOST_TEST(freed.size() == 4U);
    BOOST_TEST(p.in_flight_total() == 1U);
    BOOST_TEST(p.in_flight_count(cid(3)) == 1U);
    BOOST_TEST(!p.is_in_flight(cid(0)));
    BOOST_TEST(p.in_flight(peer(1)) == 0U);
    p.remove_peer(peer(1));  // unknown now: no-op

    p.add(peer(2), cid(7), t0);
    std::vector<request_ref> dropped;
    p.drop_below(cid(4), dropped);
    BOOST_REQUIRE(dropped.size() == 1U);
    BOOST_TEST(dropped[0] == (request_ref{peer(2), cid(3)}));
    BOOST_TEST(p.in_flight_total() == 1U);
    BOOST_TEST(p.is_in_flight(peer(2), cid(7)));
}

BOOST_AUTO_TEST_SUITE_END()
