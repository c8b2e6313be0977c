#include "pixtream/core/rate_meter.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream::core;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(rates)

BOOST_AUTO_TEST_CASE(rate_meter_steady_rate) {
    rate_meter m(250ms, 20);  // 5 s window
    const time_point t0{};
    // 1000 bytes every 10 ms = 100,000 B/s, for 10 s.
    for (int i = 0; i < 1000; ++i) m.add(1000, t0 + i * 10ms);
    BOOST_TEST(m.rate(t0 + 10s) == 100000.0, boost::test_tools::tolerance(0.06));
    BOOST_TEST(m.total() == 1000000U);
}

BOOST_AUTO_TEST_CASE(rate_meter_young_window_and_decay) {
    rate_meter m(250ms, 20);
    const time_point t0{};
    BOOST_TEST(m.rate(t0) == 0.0);
    for (int i = 0; i < 100; ++i) m.add(500, t0 + i * 10ms);  // 50,000 B/s for 1 s
    BOOST_TEST(m.rate(t0 + 1s) == 50000.0, boost::test_tools::tolerance(0.1));
    BOOST_TEST(m.rate(t0 + 7s) == 0.0);  // silence longer than the window
    BOOST_TEST(m.total() == 50000U);
}

BOOST_AUTO_TEST_CASE(token_bucket_paces_sends) {
    const time_point t0{};
    token_bucket b(1000.0, 500.0, t0);  // 1000 B/s, burst 500
    BOOST_TEST(b.try_consume(500, t0));
    BOOST_TEST(!b.try_consume(1, t0));
    BOOST_TEST(b.time_until(100, t0) == from_seconds(0.1));
    BOOST_TEST(b.try_consume(100, t0 + 100ms));
    // A send larger than the burst borrows and is told how long to wait.
    const auto wait = b.reserve(2000, t0 + 100ms);
    BOOST_TEST(to_seconds(wait) == 2.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(b.available(t0 + 2100ms) == 0.0, boost::test_tools::tolerance(1e-6));
    // Refill stops at the burst.
    BOOST_TEST(b.available(t0 + 100s) == 500.0);
}

// A reservation given back shortens the wait of the next one; the burst still caps the level.
BOOST_AUTO_TEST_CASE(token_bucket_refund) {
    const time_point t0{};
    token_bucket b(1000.0, 500.0, t0);
    BOOST_TEST(to_seconds(b.reserve(1500, t0)) == 1.0, boost::test_tools::tolerance(1e-9));
    b.refund(1500, t0);
    BOOST_TEST(b.available(t0) == 500.0);
    BOOST_TEST(b.reserve(400, t0).count() == 0);
    b.refund(1e9, t0);
    BOOST_TEST(b.available(t0) == 500.0);
}

BOOST_AUTO_TEST_CASE(token_bucket_unlimited_and_rate_change) {
    const time_point t0{};
    token_bucket u(0.0, 1.0, t0);
    BOOST_TEST(u.unlimited());
    BOOST_TEST(u.try_consume(1e12, t0));
    BOOST_TEST(u.reserve(1e12, t0).count() == 0);
    token_bucket b(100.0, 1000.0, t0);
    b.set_rate(100.0, 10.0, t0);
    BOOST_TEST(b.available(t0) == 10.0);
}

// Over a long run, a bucket lets through rate * time + burst, no more.
BOOST_AUTO_TEST_CASE(token_bucket_long_run_average) {
    const time_point t0{};
    token_bucket b(10000.0, 1500.0, t0);
    double sent = 0;
    time_point now = t0;
    while (now < t0 + 10s) {
        now += b.reserve(1200, now);
        sent += 1200;
    }
    BOOST_TEST(sent <= 10000.0 * to_seconds(now - t0) + 1500.0 + 1200.0);
    BOOST_TEST(sent >= 10000.0 * to_seconds(now - t0));
}

BOOST_AUTO_TEST_SUITE_END()
