#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/signing.hpp"

#include <boost/test/unit_test.hpp>

#include <functional>

using namespace pixtream;
using namespace pixtream::wire;

namespace {

chunk make_chunk() {
    chunk c;
    c.id = core::chunk_id{42};
    c.timestamp = 123456789;
    c.flags = chunk::flag_random_access;
    c.header_ref = core::chunk_id{40};
    c.payload.assign(1000, std::byte{0x47});
    return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(signing)

BOOST_AUTO_TEST_CASE(sign_verify_and_every_field_is_covered) {
    const auto kp = generate_keypair();
    auto c = make_chunk();
    sign_chunk(c, kp.secret);
    BOOST_TEST(verify_chunk(c, kp.public_key));

    const std::pair<const char*, std::function<void(chunk&)>> tamper[] = {
        {"id", [](chunk& x) { x.id = x.id.next(); }},
        {"timestamp", [](chunk& x) { ++x.timestamp; }},
        {"flags", [](chunk& x) { x.flags ^= chunk::flag_header; }},
        {"header ref", [](chunk& x) { x.header_ref = chunk::no_header; }},
        {"payload byte", [](chunk& x) { x.payload[500] ^= std::byte{1}; }},
        {"payload length", [](chunk& x) { x.payload.pop_back(); }},
        {"signature", [](chunk& x) { x.sig[10] ^= std::byte{0x80}; }},
    };
    for (const auto& [what, f] : tamper) {
        BOOST_TEST_CONTEXT("tampered " << what) {
            auto bad = c;
            f(bad);
            BOOST_TEST(!verify_chunk(bad, kp.public_key));
        }
    }
    BOOST_TEST(!verify_chunk(c, generate_keypair().public_key));
}

// The signature is over the wire bytes: a decoded frame verifies as it is.
BOOST_AUTO_TEST_CASE(survives_the_wire) {
    const auto kp = generate_keypair();
    auto c = make_chunk();
    sign_chunk(c, kp.secret);
    std::vector<std::byte> frame;
    encode(c, frame);
    std::error_code ec;
    const auto back = decode_body(std::span(frame).subspan(4), ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(verify_chunk(std::get<chunk>(*back), kp.public_key));
}

BOOST_AUTO_TEST_CASE(secret_key_storage) {
    const auto kp = generate_keypair();
    BOOST_TEST((kp.secret.public_key() == kp.public_key));
    const auto again = keypair_from_secret(kp.secret.bytes());
    BOOST_TEST_REQUIRE(again.has_value());
    BOOST_TEST((again->public_key == kp.public_key));
    auto corrupt = kp.secret.bytes();
    corrupt[40] ^= std::byte{1};  // public half no longer matches the seed
    BOOST_TEST(!keypair_from_secret(corrupt).has_value());
    BOOST_TEST(!keypair_from_secret(std::span(corrupt).first(63)).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
