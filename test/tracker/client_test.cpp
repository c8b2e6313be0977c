#include "pixtream/tracker/announce_request.hpp"
#include "pixtream/tracker/client.hpp"
#include "tracker_fixture.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace pixtream::tracker;
using namespace pixtream::tracker::test;
using namespace std::chrono_literals;

namespace {

tracker_url url_of(std::uint16_t port) {
    std::string err;
    return *parse_tracker_url("http://127.0.0.1:" + std::to_string(port), err);
}

announce_params params(char peer, bool source) {
    announce_params p;
    p.channel = *core::channel_key::from_hex(std::string(64, 'e'));
    p.peer = *core::peer_id::from_hex(std::string(40, peer));
    p.port = 7000;
    p.ev = event::started;
    p.is_source = source;
    return p;
}

// Runs one announce_once on a fresh io_context and returns its result.
std::variant<announce_reply, std::string> announce_sync(tracker_url url, announce_params p, core::duration timeout) {
    asio::io_context io;
    std::optional<std::variant<announce_reply, std::string>> out;
    asio::co_spawn(io, announce_once(std::move(url), std::move(p), timeout), [&](std::exception_ptr e, auto r) {
        if (e) std::rethrow_exception(e);
        out = std::move(r);
    });
    io.run();
    return std::move(*out);
}

// The failure reason of a result, or "" on success (safe to use in assertion messages).
template <class V>
std::string why(const V& v) {
    return v.index() == 1 ? std::get<1>(v) : std::string();
}

// A port with nothing listening: bind, read the port, close.
std::uint16_t dead_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tracker_client)

BOOST_AUTO_TEST_CASE(tracker_urls) {
    std::string err;
    const auto a = parse_tracker_url("http://127.0.0.1:8080", err);
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(a->host == "127.0.0.1");
    BOOST_TEST(a->port == "8080");
    BOOST_TEST(a->prefix == "");
    const auto b = parse_tracker_url("http://tracker.example/pix/announce", err);
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST(b->port == "80");
    BOOST_TEST(b->prefix == "/pix");
    const auto c = parse_tracker_url("http://[::1]:9/", err);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->host == "::1");
    const std::pair<const char*, const char*> bad[] = {{"ftp://x", "only http:// tracker URLs are supported"},
                                                       {"127.0.0.1:8080", "not an absolute URL (expected http://HOST[:PORT])"},
                                                       {"not a url", "not an absolute URL (expected http://HOST[:PORT])"},
                                                       {"http://x:0", "URL has an invalid port"},
                                                       {"http://[::]r", "URL path must start with /"}};
    for (const auto& [text, reason] : bad) {
        BOOST_TEST_CONTEXT(text) {
            BOOST_TEST(!parse_tracker_url(text, err).has_value());
            BOOST_TEST(err == reason);
        }
    }
}

BOOST_AUTO_TEST_CASE(announce_once_against_the_tracker) {
    running_tracker t({.interval = 3s});
    auto src = announce_sync(url_of(t.port()), params('1', true), 5s);
    BOOST_TEST_REQUIRE(src.index() == 0U, why(src));
    BOOST_TEST((std::get<0>(src).interval == 3s));
    auto viewer = announce_sync(url_of(t.port()), params('2', false), 5s);
    BOOST_TEST_REQUIRE(viewer.index() == 0U);
    const auto& peers = std::get<0>(viewer).peers;
    BOOST_TEST_REQUIRE(peers.size() == 1U);
    BOOST_TEST(peers[0].id.to_hex() == std::string(40, '1'));
    BOOST_TEST(peers[0].port == 7000);

    auto p = params('3', false);
    p.channel = *core::channel_key::from_hex(std::string(64, 'f'));
    const auto unknown = announce_sync(url_of(t.port()), p, 5s);
    BOOST_TEST_REQUIRE(unknown.index() == 1U);
    BOOST_TEST(why(unknown).ends_with("answered 400 unknown channel"), why(unknown));
}

BOOST_AUTO_TEST_CASE(announce_once_failures_are_reasons_not_exceptions) {
    const auto refused = announce_sync(url_of(dead_port()), params('1', true), 5s);
    BOOST_TEST_REQUIRE(refused.index() == 1U);
    BOOST_TEST(why(refused).starts_with("cannot connect to http://127.0.0.1:"), why(refused));

    // A server that accepts and never answers: the timeout ends the wait.
    asio::io_context io;
    tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto got = announce_sync(url_of(silent.local_endpoint().port()), params('1', true), 200ms);
    BOOST_TEST_REQUIRE(got.index() == 1U);
    BOOST_TEST(why(got).find("no reply from") != std::string::npos, why(got));

    // A server that answers something that is not the tracker's JSON.
    tcp::acceptor liar_socket(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::thread liar([&] {
        auto s = liar_socket.accept();
        char buf[1024];
        s.read_some(asio::buffer(buf));
        asio::write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")));
    });
    const auto lie = announce_sync(url_of(liar_socket.local_endpoint().port()), params('1', true), 5s);
    liar.join();
    BOOST_TEST_REQUIRE(lie.index() == 1U);
    BOOST_TEST(why(lie).ends_with("tracker reply is not a JSON object"), why(lie));
}

// The loop fails over from a dead tracker to a live one, hands peers over, and says `stopped` on stop.
BOOST_AUTO_TEST_CASE(client_loop_fails_over_and_stops_cleanly) {
    running_tracker t({.interval = 1s});
    BOOST_TEST_REQUIRE(announce_sync(url_of(t.port()), params('1', true), 5s).index() == 0U);

    asio::io_context io;
    client_config cfg;
    cfg.urls = {url_of(dead_port()), url_of(t.port())};
    cfg.params = params('2', false);
    std::vector<std::vector<peer_endpoint>> handed;
    std::shared_ptr<client> c;
    c = std::make_shared<client>(io.get_executor(), cfg, [&](const std::vector<peer_endpoint>& peers) {
        handed.push_back(peers);
        if (handed.size() == 2) c->stop();  // two announces: the started one and a regular one
    });
    bool done = false;
    asio::co_spawn(io, c->run(), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        done = true;
    });
    io.run_for(10s);
    BOOST_TEST_REQUIRE(done);
    BOOST_TEST_REQUIRE(handed.size() == 2U);
    BOOST_TEST(handed[0].size() == 1U);
    BOOST_TEST(c->status().failures == 1U);  // the dead URL, once
    BOOST_TEST(c->status().announces_ok == 2U);
    BOOST_TEST(c->status().last_error.starts_with("cannot connect"));
    // After stop, the tracker no longer lists peer 2.
    const auto ch = get(t.port(), "/channels");
    BOOST_TEST(ch.json().at("channels").as_array()[0].at("peers").as_int64() == 1);
}

// With every tracker down, the loop backs off exponentially (jittered between half and all of the
// step) and stop() ends it promptly, without a `stopped` announce since none ever started.
BOOST_AUTO_TEST_CASE(client_backs_off_when_every_tracker_is_down) {
    asio::io_context io;
    client_config cfg;
    cfg.urls = {url_of(dead_port())};
    cfg.params = params('4', false);
    cfg.min_backoff = 40ms;
    cfg.max_backoff = 80ms;
    auto c = std::make_shared<client>(io.get_executor(), cfg, nullptr);
    std::vector<std::chrono::steady_clock::time_point> failures;
    c->on_error([&](const std::string& why) {
        BOOST_TEST(why.starts_with("cannot connect"));
        failures.push_back(std::chrono::steady_clock::now());
        if (failures.size() == 4) c->stop();
    });
    bool done = false;
    asio::co_spawn(io, c->run(), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        done = true;
    });
    io.run_for(10s);
    BOOST_TEST_REQUIRE(done);
    BOOST_TEST_REQUIRE(failures.size() == 4U);
    // Waits of at least 20, 40 and 40 ms (half of 40, 80, 80) separate the attempts.
    const double mins[] = {0.020, 0.040, 0.040};
    for (std::size_t i = 1; i < failures.size(); ++i) {
        BOOST_TEST_CONTEXT("gap " << i) {
            BOOST_TEST(std::chrono::duration<double>(failures[i] - failures[i - 1]).count() >= mins[i - 1]);
        }
    }
    BOOST_TEST(c->status().announces_ok == 0U);
    BOOST_TEST(c->status().consecutive_failures == 4U);
}

BOOST_AUTO_TEST_SUITE_END()
