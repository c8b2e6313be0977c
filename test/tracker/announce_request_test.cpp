#include "pixtream/tracker/announce_request.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace pixtream::tracker;

namespace {

const std::string key_hex(64, 'a');
const std::string peer_hex(40, 'b');
const std::string base = "/announce?channel=" + key_hex + "&peer_id=" + peer_hex + "&port=6000";

}  // namespace

BOOST_AUTO_TEST_SUITE(announce_request)

BOOST_AUTO_TEST_CASE(valid_requests) {
    const auto a = parse_announce(base, 200);
    BOOST_TEST_REQUIRE(a.index() == 0U);
    const auto& p = std::get<announce_params>(a);
    BOOST_TEST(p.channel.to_hex() == key_hex);
    BOOST_TEST(p.peer.to_hex() == peer_hex);
    BOOST_TEST(p.port == 6000);
    BOOST_TEST((p.ev == event::none));
    BOOST_TEST(p.numwant == default_numwant);
    BOOST_TEST(!p.is_source);
    BOOST_TEST(!p.name.has_value());

    const auto b = parse_announce(base + "&event=started&numwant=7&source=1&name=my%20show&extra=ignored", 200);
    BOOST_TEST_REQUIRE(b.index() == 0U);
    const auto& q = std::get<announce_params>(b);
    BOOST_TEST((q.ev == event::started));
    BOOST_TEST(q.numwant == 7U);
    BOOST_TEST(q.is_source);
    BOOST_TEST(q.name.value() == "my show");
    const auto u = parse_announce(base + "&name=caf%C3%A9%20%E2%9C%93%20%F0%9F%8E%A5", 200);  // UTF-8 is fine
    BOOST_TEST_REQUIRE(u.index() == 0U);
    BOOST_TEST(std::get<announce_params>(u).name.value() == "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x8E\xA5");
}

BOOST_AUTO_TEST_CASE(query_round_trips) {
    announce_params p;
    p.channel = *core::channel_key::from_hex(key_hex);
    p.peer = *core::peer_id::from_hex(peer_hex);
    p.port = 1;
    p.ev = event::stopped;
    p.numwant = 0;
    p.is_source = true;
    p.name = "a&b=c d/é";
    const auto back = parse_announce("/announce?" + announce_query(p), 200);
    BOOST_TEST_REQUIRE(back.index() == 0U);
    const auto& q = std::get<announce_params>(back);
    BOOST_TEST((q.channel == p.channel));
    BOOST_TEST((q.peer == p.peer));
    BOOST_TEST(q.port == 1);
    BOOST_TEST((q.ev == event::stopped));
    BOOST_TEST(q.numwant == 0U);
    BOOST_TEST(q.is_source);
    BOOST_TEST(q.name.value() == *p.name);
}

BOOST_AUTO_TEST_CASE(invalid_requests_name_the_problem) {
    const std::pair<std::string, std::string> cases[] = {
        {"/announce", "missing parameter 'channel'"},
        {"/announce?channel=xyz&peer_id=" + peer_hex + "&port=1",
         "'channel' must be 64 hex digits (the source's public key)"},
        {"/announce?channel=" + key_hex + "&port=1", "missing parameter 'peer_id'"},
        {"/announce?channel=" + key_hex + "&peer_id=12&port=1", "'peer_id' must be 40 hex digits"},
        {"/announce?channel=" + key_hex + "&peer_id=" + peer_hex, "missing parameter 'port'"},
        {base.substr(0, base.size() - 4) + "0", "'port' must be 1 to 65535"},
        {base.substr(0, base.size() - 4) + "65536", "'port' must be 1 to 65535"},
        {base.substr(0, base.size() - 4) + "-1", "'port' must be 1 to 65535"},
        {base.substr(0, base.size() - 4) + "80x", "'port' must be 1 to 65535"},
        {base.substr(0, base.size() - 4) + "99999999999999999999999", "'port' must be 1 to 65535"},
        {base + "&event=paused", "'event' must be started or stopped"},
        {base + "&numwant=201", "'numwant' must be 0 to 200"},
        {base + "&numwant=ten", "'numwant' must be 0 to 200"},
        {base + "&source=yes", "'source' must be 0 or 1"},
        {base + "&name=", "'name' must be 1 to 64 printable characters (UTF-8)"},
        {base + "&name=" + std::string(65, 'n'), "'name' must be 1 to 64 printable characters (UTF-8)"},
        {base + "&name=a%0Ab", "'name' must be 1 to 64 printable characters (UTF-8)"},
        // Not UTF-8 (found by the tracker_request fuzzer): a lone byte, an overlong form, a surrogate.
        {base + "&name=%ea", "'name' must be 1 to 64 printable characters (UTF-8)"},
        {base + "&name=%c0%af", "'name' must be 1 to 64 printable characters (UTF-8)"},
        {base + "&name=%ed%a0%80", "'name' must be 1 to 64 printable characters (UTF-8)"},
        {base + "&port=6001", "parameter 'port' given twice"},
        {base + "&%ff=1&%ff=2", "a parameter is given twice"},
        {"announce?x", "malformed request target"},
        {"/announce?a=%zz", "malformed request target"},
    };
    for (const auto& [target, reason] : cases) {
        BOOST_TEST_CONTEXT(target) {
            const auto got = parse_announce(target, 200);
            BOOST_TEST_REQUIRE(got.index() == 1U);
            BOOST_TEST(std::get<parse_error>(got).reason == reason);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
