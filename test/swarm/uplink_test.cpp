#include "pixtream/swarm/uplink.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>

using pixtream::swarm::upload_policy;
using pixtream::swarm::uplink_config;
using pixtream::swarm::uplink_estimator;
namespace core = pixtream::core;

namespace {

const core::time_point t0{core::seconds(1000)};

// A link that drains `capacity` bytes/s while `offered` bytes/s are offered to it (the rest waits),
// sampled every 50 ms for `seconds`: returns the time at the end.
core::time_point drive(uplink_estimator& e, double capacity, double offered, double seconds, core::time_point start,
                       std::uint64_t& delivered, double& waiting) {
    const auto step = core::milliseconds(50);
    auto now = start;
    const int steps = static_cast<int>(std::lround(seconds / 0.05));
    for (int i = 0; i < steps; ++i) {
        now += step;
        waiting += offered * 0.05;
        const double sent = std::min(waiting, capacity * 0.05);
        waiting -= sent;
        delivered += static_cast<std::uint64_t>(sent);
        e.sample(delivered, waiting > 1.0, now);
    }
    return now;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(uplink_suite)

BOOST_AUTO_TEST_CASE(nothing_measured_before_the_first_interval) {
    uplink_estimator e;
    BOOST_TEST(!e.capacity(t0).has_value());
    e.sample(0, true, t0);
    e.sample(10'000, true, t0 + core::milliseconds(100));
    BOOST_TEST(!e.capacity(t0 + core::milliseconds(100)).has_value());
}

BOOST_AUTO_TEST_CASE(a_saturated_link_measures_its_capacity) {
    // Offered twice what the link drains: every interval is busy, the estimate is the capacity.
    uplink_estimator e;
    std::uint64_t delivered = 0;
    double waiting = 0;
    e.sample(0, false, t0);
    const auto end = drive(e, 200'000, 400'000, 5, t0, delivered, waiting);
    BOOST_REQUIRE(e.capacity(end).has_value());
    BOOST_TEST(*e.capacity(end) == 200'000, boost::test_tools::tolerance(0.03));
    BOOST_TEST(e.stats().busy_intervals >= 4U);
}

BOOST_AUTO_TEST_CASE(an_idle_link_gives_a_lower_bound_only) {
    // Offered less than the capacity: the estimate is what was offered (a lower bound), never more.
    uplink_estimator e;
    std::uint64_t delivered = 0;
    double waiting = 0;
    e.sample(0, false, t0);
    const auto end = drive(e, 1'000'000, 60'000, 5, t0, delivered, waiting);
    BOOST_TEST(!e.capacity(end).has_value());
    BOOST_TEST(e.lower_bound(end) == 60'000, boost::test_tools::tolerance(0.05));
    BOOST_TEST(e.stats().busy_intervals == 0U);
    BOOST_TEST(!e.saturated_recently(end));
    // The policy never paces at a mere lower bound (that would throttle the node to its past
    // demand), and drains at least at the assumed rate for the backlog bound.
    upload_policy p;
    p.estimator() = e;
    BOOST_TEST(p.pacing_rate(end) == 0.0);
    BOOST_TEST(p.drain_rate(end) == 125'000);
}

BOOST_AUTO_TEST_CASE(a_busy_measurement_outlives_the_window) {
    uplink_estimator e;
    std::uint64_t delivered = 0;
    double waiting = 0;
    e.sample(0, false, t0);
    auto now = drive(e, 150'000, 300'000, 3, t0, delivered, waiting);
    waiting = 0;
    now = drive(e, 150'000, 10'000, 30, now, delivered, waiting);  // quiet for three windows
    BOOST_REQUIRE(e.capacity(now).has_value());
    BOOST_TEST(*e.capacity(now) == 150'000, boost::test_tools::tolerance(0.05));
    BOOST_TEST(!e.saturated_recently(now));  // remembered, but no longer a reason to pace
}

BOOST_AUTO_TEST_CASE(the_max_filter_follows_a_capacity_drop_after_its_window) {
    uplink_config cfg;
    cfg.window = core::seconds(4);
    uplink_estimator e(cfg);
    std::uint64_t delivered = 0;
    double waiting = 0;
    e.sample(0, false, t0);
    auto now = drive(e, 300'000, 600'000, 3, t0, delivered, waiting);
    BOOST_TEST(*e.capacity(now) == 300'000, boost::test_tools::tolerance(0.03));
    now = drive(e, 100'000, 600'000, 2, now, delivered, waiting);
    BOOST_TEST(*e.capacity(now) == 300'000, boost::test_tools::tolerance(0.03));  // still remembered
    now = drive(e, 100'000, 600'000, 5, now, delivered, waiting);
    BOOST_TEST(*e.capacity(now) == 100'000, boost::test_tools::tolerance(0.03));  // window passed
}

BOOST_AUTO_TEST_CASE(the_user_cap_bounds_the_estimate) {
    uplink_config cfg;
    cfg.max_rate = 50'000;
    upload_policy p(cfg);
    std::uint64_t delivered = 0;
    double waiting = 0;
    p.estimator().sample(0, false, t0);
    const auto end = drive(p.estimator(), 200'000, 400'000, 2, t0, delivered, waiting);
    BOOST_TEST(*p.estimator().capacity(end) == 50'000);
    BOOST_TEST(p.pacing_rate(end) == 50'000);
    BOOST_TEST(p.drain_rate(end) == 50'000);
}

BOOST_AUTO_TEST_CASE(a_closed_connection_is_not_negative_progress) {
    uplink_estimator e;
    e.sample(100'000, true, t0);
    e.sample(50'000, true, t0 + core::milliseconds(500));  // a connection's 50 kB left the sum
    e.sample(100'000, true, t0 + core::milliseconds(1000));
    // Progress after the drop only (50 kB in the 1 s interval), never a negative rate.
    BOOST_REQUIRE(e.capacity(t0 + core::milliseconds(1000)).has_value());
    BOOST_TEST(*e.capacity(t0 + core::milliseconds(1000)) == 50'000, boost::test_tools::tolerance(0.01));
}

BOOST_AUTO_TEST_CASE(rejects_when_the_backlog_outlasts_the_bound) {
    upload_policy p;  // 500 ms bound
    // Nothing measured: the assumed 125 kB/s rate.
    BOOST_TEST(!p.should_reject(60'000, t0));
    BOOST_TEST(p.should_reject(70'000, t0));
    BOOST_TEST(p.pacing_rate(t0) == 0.0);  // no cap, nothing measured: no pacing
    std::uint64_t delivered = 0;
    double waiting = 0;
    p.estimator().sample(0, false, t0);
    const auto end = drive(p.estimator(), 50'000, 100'000, 3, t0, delivered, waiting);
    // 50 kB/s measured: 0.5 s is 25 kB.
    BOOST_TEST(p.backlog_seconds(25'000, end) == 0.5, boost::test_tools::tolerance(0.03));
    BOOST_TEST(!p.should_reject(20'000, end));
    BOOST_TEST(p.should_reject(30'000, end));
    // Paced a little below the estimate (0.9 x, so that the link's queue drains) while the link was
    // recently the limit, probing at 1.25 x one interval in eight; once no busy interval is left in
    // the window, not paced at all.
    int probing = 0;
    for (int i = 0; i < 16; ++i) {  // 8 s: still within the window
        const double r = p.pacing_rate(end + core::milliseconds(500) * i);
        if (r > 55'000) ++probing;
        BOOST_TEST((std::abs(r - 45'000) < 1'500 || std::abs(r - 62'500) < 2'000));
    }
    BOOST_TEST(probing == 2);
    BOOST_TEST(p.pacing_rate(end + core::seconds(11)) == 0.0);
}

BOOST_AUTO_TEST_CASE(the_kernel_holds_about_one_round_trip) {
    upload_policy p;
    // Unmeasured: the assumed 125 kB/s; 200 ms RTT + 100 ms margin, x 1.25: 46.9 kB.
    BOOST_TEST(p.kernel_budget(core::milliseconds(200), t0) == 125'000 * 1.25 * 0.3, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.kernel_budget(core::milliseconds(0), t0) == 24 * 1024);  // the floor
    std::uint64_t delivered = 0;
    double waiting = 0;
    p.estimator().sample(0, false, t0);
    const auto end = drive(p.estimator(), 400'000, 800'000, 3, t0, delivered, waiting);
    BOOST_TEST(p.kernel_budget(core::milliseconds(100), end) == 400'000 * 1.25 * 0.2, boost::test_tools::tolerance(0.03));
}

BOOST_AUTO_TEST_SUITE_END()
