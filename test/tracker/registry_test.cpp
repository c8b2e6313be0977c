#include "pixtream/tracker/registry.hpp"

#include <boost/test/unit_test.hpp>

#include <map>
#include <set>

using namespace pixtream;
using namespace pixtream::tracker;
using namespace std::chrono_literals;

namespace {

core::channel_key key(int b) {
    core::channel_key k;
    k.bytes()[0] = static_cast<std::byte>(b);
    return k;
}

core::peer_id pid(int n) {
    core::peer_id p;
    p.bytes()[0] = static_cast<std::byte>(n & 0xFF);
    p.bytes()[1] = static_cast<std::byte>(n >> 8);
    return p;
}

announce_params params(int channel, int peer, event ev = event::none, std::size_t numwant = 50, bool source = false) {
    announce_params p;
    p.channel = key(channel);
    p.peer = pid(peer);
    p.port = static_cast<std::uint16_t>(10000 + peer);
    p.ev = ev;
    p.numwant = numwant;
    p.is_source = source;
    return p;
}

const core::time_point t0{};

}  // namespace

BOOST_AUTO_TEST_SUITE(registry_suite)

BOOST_AUTO_TEST_CASE(source_creates_channel_viewers_join) {
    registry r({});
    std::error_code ec;
    BOOST_TEST(!r.announce(params(1, 2, event::started), "127.0.0.1", t0, ec).has_value());
    BOOST_TEST((ec == errc::unknown_channel));

    auto src = params(1, 1, event::started, 50, true);
    src.name = "news";
    const auto first = r.announce(src, "127.0.0.1", t0, ec);
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(first->peers.empty());
    BOOST_TEST((first->interval == 10s));

    const auto viewer = r.announce(params(1, 2, event::started), "127.0.0.2", t0, ec);
    BOOST_TEST_REQUIRE(viewer.has_value());
    BOOST_TEST_REQUIRE(viewer->peers.size() == 1U);
    BOOST_TEST((viewer->peers[0] == peer_endpoint{pid(1), "127.0.0.1", 10001}));

    const auto info = r.find_channel(key(1));
    BOOST_TEST_REQUIRE(info.has_value());
    BOOST_TEST(info->name == "news");
    BOOST_TEST(info->peers == 2U);
    BOOST_TEST(info->has_source);
}

BOOST_AUTO_TEST_CASE(numwant_subset_is_distinct_random_and_never_the_caller) {
    registry r({.seed = 3});
    std::error_code ec;
    r.announce(params(1, 0, event::started, 0, true), "10.0.0.1", t0, ec);
    for (int i = 1; i < 100; ++i) r.announce(params(1, i, event::started, 0), "127.0.0.1", t0, ec);

    std::map<int, int> seen;
    for (int round = 0; round < 400; ++round) {
        const int caller = round % 100;
        const auto got = r.announce(params(1, caller, event::none, 10), "127.0.0.1", t0, ec);
        BOOST_TEST_REQUIRE(got.has_value());
        BOOST_TEST_REQUIRE(got->peers.size() == 10U);
        std::set<core::peer_id> distinct;
        for (const auto& p : got->peers) {
            BOOST_TEST_REQUIRE(!(p.id == pid(caller)));
            distinct.insert(p.id);
            ++seen[std::to_integer<int>(p.id.bytes()[0])];
        }
        BOOST_TEST_REQUIRE(distinct.size() == 10U);
    }
    // 4000 picks over 100 peers: every peer is picked, none wildly more than the mean of 40.
    BOOST_TEST(seen.size() == 100U);
    for (const auto& [peer, n] : seen) BOOST_TEST_CONTEXT("peer " << peer) { BOOST_TEST(n < 100); }

    // numwant larger than the swarm: everyone else, once.
    const auto all = r.announce(params(1, 5, event::none, 200), "127.0.0.1", t0, ec);
    BOOST_TEST(all->peers.size() == 99U);
    // numwant above the tracker's maximum is clamped.
    registry small({.max_numwant = 3});
    small.announce(params(2, 0, event::started, 0, true), "a", t0, ec);
    for (int i = 1; i < 10; ++i) small.announce(params(2, i, event::started, 0), "b", t0, ec);
    BOOST_TEST(small.announce(params(2, 1, event::none, 1000), "b", t0, ec)->peers.size() == 3U);
}

BOOST_AUTO_TEST_CASE(stopped_removes_and_empty_channels_vanish) {
    registry r({});
    std::error_code ec;
    r.announce(params(1, 1, event::started, 50, true), "a", t0, ec);
    r.announce(params(1, 2, event::started), "b", t0, ec);
    r.announce(params(1, 2, event::stopped), "b", t0, ec);
    BOOST_TEST(r.find_channel(key(1))->peers == 1U);
    BOOST_TEST(r.announce(params(1, 3, event::started), "c", t0, ec)->peers.size() == 1U);
    r.announce(params(1, 3, event::stopped), "c", t0, ec);
    r.announce(params(1, 1, event::stopped, 50, true), "a", t0, ec);
    BOOST_TEST(!r.find_channel(key(1)).has_value());
    BOOST_TEST(r.stats().channels == 0U);
    // A stop for an unknown channel or peer is harmless.
    BOOST_TEST(r.announce(params(9, 9, event::stopped), "z", t0, ec).has_value());
    BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(silent_peers_expire_after_two_intervals_and_five_seconds) {
    registry r({.interval = 10s});
    BOOST_TEST((r.config().peer_timeout() == 25s));
    std::error_code ec;
    r.announce(params(1, 1, event::started, 50, true), "a", t0, ec);
    r.announce(params(1, 2, event::started), "b", t0, ec);
    r.announce(params(1, 3, event::started), "c", t0, ec);
    r.announce(params(1, 1, event::none), "a", t0 + 20s, ec);  // the source keeps announcing
    r.announce(params(1, 2, event::none), "b", t0 + 20s, ec);
    r.expire(t0 + 25s);  // exactly the timeout: still there
    BOOST_TEST(r.stats().peers == 3U);
    r.expire(t0 + 25s + 1ms);
    BOOST_TEST(r.stats().peers == 2U);
    BOOST_TEST(r.stats().expired == 1U);
    r.expire(t0 + 46s);
    BOOST_TEST(r.stats().peers == 0U);
    BOOST_TEST(r.stats().channels == 0U);
}

BOOST_AUTO_TEST_CASE(caps) {
    registry r({.max_channels = 2, .max_peers_per_channel = 3});
    std::error_code ec;
    BOOST_TEST(r.announce(params(1, 1, event::started, 50, true), "a", t0, ec).has_value());
    BOOST_TEST(r.announce(params(2, 1, event::started, 50, true), "a", t0, ec).has_value());
    BOOST_TEST(!r.announce(params(3, 1, event::started, 50, true), "a", t0, ec).has_value());
    BOOST_TEST((ec == errc::too_many_channels));
    r.announce(params(1, 2, event::started), "b", t0, ec);
    r.announce(params(1, 3, event::started), "c", t0, ec);
    BOOST_TEST(!r.announce(params(1, 4, event::started), "d", t0, ec).has_value());
    BOOST_TEST((ec == errc::channel_full));
    BOOST_TEST(r.announce(params(1, 3, event::none), "c", t0, ec).has_value());  // members still announce
    BOOST_TEST(r.stats().rejected == 2U);
}

BOOST_AUTO_TEST_CASE(reannounce_updates_address_and_only_the_source_names) {
    registry r({});
    std::error_code ec;
    auto src = params(1, 1, event::started, 50, true);
    src.name = "first";
    r.announce(src, "a", t0, ec);
    auto viewer = params(1, 2, event::started);
    viewer.name = "hijack";
    r.announce(viewer, "b", t0, ec);
    BOOST_TEST(r.find_channel(key(1))->name == "first");
    viewer.port = 999;
    r.announce(viewer, "c", t0, ec);
    const auto got = r.announce(params(1, 1), "a", t0, ec);
    BOOST_TEST_REQUIRE(got->peers.size() == 1U);
    BOOST_TEST((got->peers[0] == peer_endpoint{pid(2), "c", 999}));
}

BOOST_AUTO_TEST_SUITE_END()
