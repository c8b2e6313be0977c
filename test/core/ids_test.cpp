#include "pixtream/core/error.hpp"
#include "pixtream/core/ids.hpp"

#include <boost/test/unit_test.hpp>

#include <random>
#include <unordered_set>

using namespace pixtream::core;

BOOST_AUTO_TEST_SUITE(ids)

BOOST_AUTO_TEST_CASE(chunk_id_arithmetic_and_order) {
    const chunk_id a{10};
    BOOST_TEST((a + 5).value() == 15U);
    BOOST_TEST((a - 3).value() == 7U);
    BOOST_TEST(distance(a, chunk_id{4}) == -6);
    BOOST_TEST(distance(a, chunk_id{14}) == 4);
    BOOST_TEST((a < a.next()));
    chunk_id b = a;
    ++b;
    BOOST_TEST((b == chunk_id{11}));
}

BOOST_AUTO_TEST_CASE(hex_round_trip) {
    std::mt19937_64 gen(42);
    for (int i = 0; i < 100; ++i) {
        const auto p = peer_id::random(gen);
        const auto text = p.to_hex();
        BOOST_TEST(text.size() == 40U);
        const auto back = peer_id::from_hex(text);
        BOOST_TEST_REQUIRE(back.has_value());
        BOOST_TEST((*back == p));
    }
}

BOOST_AUTO_TEST_CASE(hex_known_value_and_case) {
    const auto k = channel_key::from_hex(std::string(62, '0') + "aB");
    BOOST_TEST_REQUIRE(k.has_value());
    BOOST_TEST(std::to_integer<int>(k->bytes()[31]) == 0xAB);
    BOOST_TEST(k->to_hex() == std::string(62, '0') + "ab");
    BOOST_TEST(!k->is_zero());
    BOOST_TEST(channel_key{}.is_zero());
}

BOOST_AUTO_TEST_CASE(hex_rejects_bad_text) {
    const char* cases[] = {"", "00", "zz", "0000000000000000000000000000000000000000x0",
                           "000000000000000000000000000000000000000g"};
    for (const char* c : cases) {
        BOOST_TEST_CONTEXT("input '" << c << "'") { BOOST_TEST(!peer_id::from_hex(c).has_value()); }
    }
}

BOOST_AUTO_TEST_CASE(hash_distinguishes_ids) {
    std::mt19937_64 gen(7);
    std::unordered_set<peer_id> set;
    for (int i = 0; i < 1000; ++i) set.insert(peer_id::random(gen));
    BOOST_TEST(set.size() == 1000U);
}

BOOST_AUTO_TEST_CASE(error_codes_are_typed) {
    const std::error_code ec = errc::out_of_window;
    BOOST_TEST(std::string(ec.category().name()) == "pixtream.core");
    BOOST_TEST(ec.message() == "chunk id outside the buffer-map window");
    BOOST_TEST((ec == errc::out_of_window));
    BOOST_TEST((ec != errc::invalid_hex));
}

BOOST_AUTO_TEST_SUITE_END()
