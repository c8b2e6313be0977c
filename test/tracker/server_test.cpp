#include "tracker_fixture.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace pixtream::tracker;
using namespace pixtream::tracker::test;
using namespace std::chrono_literals;

namespace {

const std::string chan(64, 'c');
std::string peer(char c) { return std::string(40, c); }
std::string announce_target(char p, std::uint16_t port, const std::string& extra = "") {
    return "/announce?channel=" + chan + "&peer_id=" + peer(p) + "&port=" + std::to_string(port) + extra;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tracker_server)

BOOST_AUTO_TEST_CASE(announce_flow_channels_stats_metrics) {
    running_tracker t({.interval = 7s});
    auto r = get(t.port(), announce_target('a', 5000, "&event=started&source=1&name=demo"));
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    BOOST_TEST(r.json().at("interval").to_number<double>() == 7.0);
    BOOST_TEST(r.json().at("peers").as_array().empty());

    r = get(t.port(), announce_target('b', 5001, "&event=started"));
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    const auto reply = r.json();
    const auto& peers = reply.at("peers").as_array();
    BOOST_TEST_REQUIRE(peers.size() == 1U);
    BOOST_TEST(peers[0].at("id").as_string() == peer('a'));
    BOOST_TEST(peers[0].at("ip").as_string() == "127.0.0.1");
    BOOST_TEST(peers[0].at("port").as_int64() == 5000);

    r = get(t.port(), "/channels");
    BOOST_TEST_REQUIRE(r.status == 200);
    const auto listing = r.json();
    const auto& ch = listing.at("channels").as_array();
    BOOST_TEST_REQUIRE(ch.size() == 1U);
    BOOST_TEST(ch[0].at("key").as_string() == chan);
    BOOST_TEST(ch[0].at("name").as_string() == "demo");
    BOOST_TEST(ch[0].at("peers").as_int64() == 2);
    BOOST_TEST(ch[0].at("source").as_bool());

    r = get(t.port(), announce_target('b', 5001, "&event=stopped"));
    BOOST_TEST(r.status == 200);
    r = get(t.port(), "/stats");
    BOOST_TEST_REQUIRE(r.status == 200);
    BOOST_TEST(r.json().at("peers").as_int64() == 1);
    BOOST_TEST(r.json().at("started").as_int64() == 2);
    BOOST_TEST(r.json().at("stopped").as_int64() == 1);

    r = get(t.port(), "/metrics");
    BOOST_TEST_REQUIRE(r.status == 200);
    BOOST_TEST(r.body.find("# TYPE pixtream_tracker_announces_total counter\npixtream_tracker_announces_total 3\n") !=
               std::string::npos, r.body);
    BOOST_TEST(r.body.find("pixtream_tracker_channel_peers{channel=\"" + chan + "\",name=\"demo\"} 1\n") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_several_requests_on_one_connection) {
    running_tracker t;
    asio::io_context io;
    auto s = connect_to(io, t.port());
    for (int i = 0; i < 3; ++i) {
        asio::write(s, asio::buffer(std::string("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")));
        std::string data;
        char buf[4096];
        while (data.find("\r\n\r\n") == std::string::npos || data.back() != '}') data.append(buf, s.read_some(asio::buffer(buf)));
        BOOST_TEST(data.starts_with("HTTP/1.1 200 OK"));
        BOOST_TEST(data.find("\"http_requests\":" + std::to_string(i + 1)) != std::string::npos, data);
    }
}

BOOST_AUTO_TEST_CASE(bad_requests_get_json_errors) {
    running_tracker t;
    get(t.port(), announce_target('a', 5000, "&event=started&source=1"));
    const std::tuple<std::string, int, std::string> cases[] = {
        {"/announce?peer_id=" + peer('f') + "&port=1", 400, "missing parameter 'channel'"},
        {announce_target('f', 0), 400, "'port' must be 1 to 65535"},
        {"/announce?channel=" + std::string(64, 'd') + "&peer_id=" + peer('f') + "&port=9", 400, "unknown channel"},
        {announce_target('f', 9, "&numwant=100000"), 400, "'numwant' must be 0 to 200"},
        {"/nothing", 404, "no such endpoint; try /announce, /channels, /stats or /metrics"},
    };
    for (const auto& [target, status, reason] : cases) {
        BOOST_TEST_CONTEXT(target) {
            const auto r = get(t.port(), target);
            BOOST_TEST(r.status == status);
            BOOST_TEST(r.json().at("error").as_string() == reason);
        }
    }
    const auto post = http_exchange(t.port(), "POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    BOOST_TEST(post.status == 405);
    BOOST_TEST(post.json().at("error").as_string() == "only GET is supported");
}

BOOST_AUTO_TEST_CASE(oversized_garbage_and_slow_requests) {
    running_tracker t({}, {.read_timeout = 300ms});
    struct hostile {
        const char* what;
        std::string raw;
        int status;
        std::string reason;
    };
    const hostile cases[] = {
        {"header too large", "GET /stats HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(9000, 'p') + "\r\n\r\n", 400,
         "request header too large"},
        {"body too large", "GET /stats HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + std::string(4096, 'b'),
         413, "request body too large"},
        {"chunked body too large",
         "GET /stats HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(2048, 'b'), 413,
         "request body too large"},
        {"garbage", std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16), 400, "malformed HTTP request"},
        {"bad version", "GET / HTTP/9\r\n\r\n", 400, "malformed HTTP request"},
        {"slowloris", "GET /stats HTTP/1.1\r\nHost: t\r\nX-Slow: ", 408, "request not received in time"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            const auto r = http_exchange(t.port(), c.raw);
            BOOST_TEST(r.status == c.status, r.error);
            BOOST_TEST(r.json().at("error").as_string() == c.reason);
            BOOST_TEST(r.closed_after);
        }
    }
    // The tracker is still fine and counted every one of them.
    const auto s = get(t.port(), "/stats");
    BOOST_TEST_REQUIRE(s.status == 200);
    BOOST_TEST(s.json().at("bad_requests").as_int64() == 6);
    BOOST_TEST(s.json().at("timeouts").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(connection_cap_refuses_extra_connections) {
    running_tracker t({}, {.max_connections = 2});
    asio::io_context io;
    auto a = connect_to(io, t.port());
    auto b = connect_to(io, t.port());
    // One request on each proves both are being served before the third arrives.
    for (auto* s : {&a, &b}) {
        asio::write(*s, asio::buffer(std::string("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")));
        char buf[2048];
        BOOST_TEST_REQUIRE(s->read_some(asio::buffer(buf)) > 0U);
    }
    auto c = connect_to(io, t.port());
    char buf[16];
    boost::system::error_code ec;
    c.read_some(asio::buffer(buf), ec);
    BOOST_TEST((ec == asio::error::eof || ec == asio::error::connection_reset), ec.message());
    asio::write(a, asio::buffer(std::string("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")));
    const auto r = read_reply(a, false);
    BOOST_TEST(r.json().at("refused_connections").as_int64() == 1);
    BOOST_TEST(r.json().at("connections").as_int64() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
