#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"
#include "sample_messages.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace pixtream;
using namespace pixtream::wire;
using test::bytes;

namespace {

std::vector<std::byte> encoded(const message& m) {
    std::vector<std::byte> out;
    encode(m, out);
    return out;
}

std::vector<std::byte> concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::vector<std::byte> range_bytes(int first, int count) {
    std::vector<std::byte> out;
    for (int i = 0; i < count; ++i) out.push_back(static_cast<std::byte>(first + i));
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec)

// The byte layouts of docs/protocol.md, pinned.
BOOST_AUTO_TEST_CASE(golden_bytes) {
    const auto s = test::sample_messages();
    struct golden {
        const char* what;
        message msg;
        std::vector<std::byte> expected;
    };
    const golden cases[] = {
        {"keepalive", keepalive{}, bytes({0, 0, 0, 1, 0x00})},
        {"handshake", s[1],
         concat(concat(concat(bytes({0, 0, 0, 61, 0x01, 'P', 'X', 'T', 'M', 1, 1}), range_bytes(1, 32)),
                       range_bytes(0xA0, 20)),
                bytes({0xEA, 0x61}))},
        {"buffer map", s[2], bytes({0, 0, 0, 13, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0, 13, 0xF0, 0x08})},
        {"empty buffer map", s[3], bytes({0, 0, 0, 11, 0x02, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0})},
        {"have", s[4], bytes({0, 0, 0, 9, 0x03, 0, 0, 0, 0, 0, 0, 0, 1})},
        {"request", s[5], bytes({0, 0, 0, 9, 0x04, 0x3F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})},
        {"cancel", s[6], bytes({0, 0, 0, 9, 0x05, 0, 0, 0, 0, 0, 0, 0, 2})},
        {"reject", s[7], bytes({0, 0, 0, 9, 0x06, 0, 0, 0, 0, 0, 0, 0, 3})},
        {"end of stream chunk", s[9],
         concat(bytes({0, 0, 0, 94, 0x07, 0, 0, 0, 0, 0, 0, 0, 78, 0, 0, 0, 0, 0, 0, 0, 0, 0x04,
                       0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}),
                std::vector<std::byte>(64))},
        {"peers", s[10],
         concat(concat(concat(concat(bytes({0, 0, 0, 68, 0x08, 2}), range_bytes(0xA0, 20)),
                              bytes({4, 127, 0, 0, 1, 0xEA, 0x62})),
                       range_bytes(0xA0, 20)),
                bytes({6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}))},
        {"no peers", s[11], bytes({0, 0, 0, 2, 0x08, 0})},
        {"subscribe", s[12], bytes({0, 0, 0, 6, 0x09, 4, 0, 0, 0, 0x05})},
        {"grant", s[13], bytes({0, 0, 0, 6, 0x0a, 32, 0x80, 0, 0, 0x01})},
    };
    for (const auto& g : cases) {
        BOOST_TEST_CONTEXT(g.what) {
            const auto got = encoded(g.msg);
            BOOST_TEST(got == g.expected, boost::test_tools::per_element());
            BOOST_TEST(frame_size(g.msg) == g.expected.size());
        }
    }
}

BOOST_AUTO_TEST_CASE(chunk_layout_and_prefix) {
    const auto c = std::get<chunk>(test::sample_messages()[8]);
    const auto frame = encoded(c);
    BOOST_TEST_REQUIRE(frame.size() == 4U + 1 + 29 + 300 + 64);
    const auto head = bytes({0, 0, 0x01, 0x8A, 0x07,                         // length 394, CHUNK
                             0, 0, 0, 0, 0, 0, 0, 77,                        // id
                             0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00, // timestamp
                             0x01,                                           // random access
                             0, 0, 0, 0, 0, 0, 0, 3,                         // header ref
                             0, 0, 0x01, 0x2C});                             // payload length 300
    BOOST_TEST(std::vector<std::byte>(frame.begin(), frame.begin() + 34) == head, boost::test_tools::per_element());
    const auto prefix = encode_chunk_prefix(c);
    BOOST_TEST(std::vector<std::byte>(prefix.begin(), prefix.end()) == head, boost::test_tools::per_element());
    BOOST_TEST(std::equal(c.payload.begin(), c.payload.end(), frame.begin() + 34));
    BOOST_TEST(std::equal(c.sig.begin(), c.sig.end(), frame.end() - 64));
    const auto signed_header = chunk_signed_header(c);
    BOOST_TEST(std::equal(signed_header.begin(), signed_header.end(), head.begin() + 5));
}

BOOST_AUTO_TEST_CASE(round_trip_every_message) {
    for (const auto& m : test::sample_messages()) {
        BOOST_TEST_CONTEXT(name_of(type_of(m))) {
            const auto frame = encoded(m);
            std::error_code ec;
            const auto back = decode_body(std::span(frame).subspan(4), ec);
            BOOST_TEST_REQUIRE(!ec, ec.message());
            BOOST_TEST((*back == m));
        }
    }
}

// Every proper prefix of every body is a truncated message, never a different valid message.
BOOST_AUTO_TEST_CASE(every_truncation_is_an_error) {
    for (const auto& m : test::sample_messages()) {
        const auto frame = encoded(m);
        const auto body = std::span(frame).subspan(4);
        for (std::size_t len = 0; len < body.size(); ++len) {
            BOOST_TEST_CONTEXT(name_of(type_of(m)) << " cut to " << len) {
                std::error_code ec;
                const auto got = decode_body(body.first(len), ec);
                BOOST_TEST(!got.has_value());
                BOOST_TEST((ec == (len == 0 ? errc::empty_frame : errc::truncated_message)), ec.message());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(invalid_bodies_give_typed_errors) {
    const auto s = test::sample_messages();
    auto body_of = [](const message& m) {
        auto f = encoded(m);
        return std::vector<std::byte>(f.begin() + 4, f.end());
    };
    auto hs = body_of(s[1]);
    auto bad_magic = hs;
    bad_magic[1] = std::byte{'Q'};
    auto bad_version = hs;
    bad_version[5] = std::byte{2};
    auto long_hs = hs;
    long_hs.push_back(std::byte{0});

    auto big_bitmap = bytes({0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x01});  // 4097 bits
    auto padding = body_of(s[2]);
    padding.back() = std::byte{0x09};  // bit 13 is padding
    auto bad_flags = body_of(s[8]);
    bad_flags[17] = std::byte{0x08};
    auto huge_payload = body_of(s[9]);
    huge_payload[27] = std::byte{0x10};  // length 0x00100001 > 1 MiB
    huge_payload[29] = std::byte{0x01};
    auto short_payload = body_of(s[8]);
    short_payload[29] = std::byte{0x2D};  // says 301 bytes, has 300
    auto long_payload = body_of(s[8]);
    long_payload[29] = std::byte{0x2B};  // says 299 bytes, has 300
    auto many_peers = bytes({0x08, 51});
    auto bad_family = body_of(s[10]);
    bad_family[22] = std::byte{5};
    auto zero_port = body_of(s[10]);
    zero_port[27] = std::byte{0};
    zero_port[28] = std::byte{0};
    auto peers_trailing = body_of(s[11]);
    peers_trailing.push_back(std::byte{0});
    auto far_chunk = body_of(s[8]);
    far_chunk[1] = std::byte{0x40};  // id 2^62 + ...: beyond max_chunk_id
    auto far_header_ref = body_of(s[8]);
    far_header_ref[18] = std::byte{0x7F};  // a header reference beyond max_chunk_id (not the all-ones "none")

    const std::pair<std::vector<std::byte>, errc> cases[] = {
        {bytes({0x0b}), errc::unknown_message_type},
        {bytes({0x09, 4, 0, 0, 0}), errc::truncated_message},
        {bytes({0x0a, 4, 0, 0, 0, 1, 0}), errc::trailing_bytes},
        {bytes({0x09, 0, 0, 0, 0, 0}), errc::bad_substreams},      // no substreams
        {bytes({0x09, 33, 0, 0, 0, 1}), errc::bad_substreams},     // more than max_substreams
        {bytes({0x0a, 4, 0, 0, 0, 0x10}), errc::bad_substreams},   // mask bit 4 of 4 substreams
        {bytes({0xFF, 1, 2, 3}), errc::unknown_message_type},
        {bytes({0x00, 0}), errc::trailing_bytes},
        {bad_magic, errc::bad_magic},
        {bad_version, errc::unsupported_version},
        {long_hs, errc::trailing_bytes},
        {big_bitmap, errc::bitmap_too_large},
        {padding, errc::bitmap_padding},
        {bytes({0x03, 0, 0, 0, 0, 0, 0, 0, 1, 9}), errc::trailing_bytes},
        {bad_flags, errc::invalid_chunk_flags},
        {huge_payload, errc::payload_too_large},
        {short_payload, errc::truncated_message},
        {long_payload, errc::trailing_bytes},
        {many_peers, errc::too_many_peers},
        {bad_family, errc::bad_address_family},
        {zero_port, errc::invalid_port},
        {peers_trailing, errc::trailing_bytes},
        {bytes({0x03, 0x40, 0, 0, 0, 0, 0, 0, 0}), errc::chunk_id_out_of_range},  // HAVE 2^62
        {bytes({0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), errc::chunk_id_out_of_range},
        {bytes({0x02, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x08, 0xFF}), errc::chunk_id_out_of_range},  // bitmap base
        {far_chunk, errc::chunk_id_out_of_range},
        {far_header_ref, errc::chunk_id_out_of_range},
    };
    int i = 0;
    for (const auto& [body, want] : cases) {
        BOOST_TEST_CONTEXT("case " << i++ << ", want " << make_error_code(want).message()) {
            std::error_code ec;
            BOOST_TEST(!decode_body(body, ec).has_value());
            BOOST_TEST((ec == want), ec.message());
        }
    }
}

// Random bodies: decoding never misbehaves, and whatever decodes re-encodes to the same bytes
// (the encoding is canonical, so a forwarded frame is the frame received).
BOOST_AUTO_TEST_CASE(garbage_is_rejected_or_canonical) {
    std::mt19937_64 gen(2024);
    std::size_t decoded = 0;
    for (int i = 0; i < 200000; ++i) {
        std::vector<std::byte> body(1 + gen() % 80);
        for (auto& b : body) b = static_cast<std::byte>(gen());
        body[0] = static_cast<std::byte>(gen() % 10);  // mostly known types
        if (body[0] == std::byte{0x07} && body.size() > 30) {
            body[26] = body[27] = std::byte{0};  // plausible payload lengths now and then
            body[28] = std::byte{0};
        }
        std::error_code ec;
        const auto m = decode_body(body, ec);
        BOOST_TEST_REQUIRE(m.has_value() == !ec);
        if (m) {
            ++decoded;
            const auto again = encoded(*m);
            BOOST_TEST_REQUIRE(std::equal(again.begin() + 4, again.end(), body.begin(), body.end()));
        }
    }
    BOOST_TEST(decoded > 0U);  // the generator does reach valid messages
}

BOOST_AUTO_TEST_CASE(encoding_what_the_protocol_forbids_is_a_bug) {
    chunk c;
    c.payload.resize(max_chunk_payload + 1);
    std::vector<std::byte> out;
    BOOST_CHECK_THROW(encode(c, out), std::invalid_argument);
    BOOST_CHECK_THROW(encode(peers{std::vector<peer_entry>(max_pex_peers + 1)}, out), std::invalid_argument);
    BOOST_CHECK_THROW(encode(bitmap{core::chunk_id{}, 5000, {}}, out), std::invalid_argument);
    BOOST_CHECK_THROW(encode(subscribe{0, 0}, out), std::invalid_argument);
    BOOST_CHECK_THROW(encode(grant{3, 0x08}, out), std::invalid_argument);
    BOOST_TEST(out.empty());
    c.payload.resize(max_chunk_payload);
    encode(c, out);
    BOOST_TEST(out.size() <= frame_header_size + max_frame_size);
}

BOOST_AUTO_TEST_CASE(bitmap_and_buffer_map_convert) {
    core::buffer_map map(128, core::chunk_id{1000});
    for (std::uint64_t id : {1000U, 1003U, 1064U, 1127U}) map.set(core::chunk_id{id});
    const auto b = bitmap::from(map);
    BOOST_TEST(b.bit_count == 128U);
    BOOST_TEST(b.test(core::chunk_id{1003}));
    BOOST_TEST(!b.test(core::chunk_id{1004}));
    BOOST_TEST(!b.test(core::chunk_id{1128}));
    BOOST_TEST(!b.test(core::chunk_id{999}));
    BOOST_TEST(!b.test(core::chunk_id{1000 + (std::uint64_t{1} << 63U)}));  // found by the frame_decoder fuzzer
    BOOST_TEST(!b.test(core::chunk_id{~std::uint64_t{0}}));
    core::buffer_map other(128, core::chunk_id{1064});  // overlapping window: only its part applies
    b.apply_to(other);
    BOOST_TEST(other.count() == 2U);
    BOOST_TEST(other.test(core::chunk_id{1064}));
    BOOST_TEST(other.test(core::chunk_id{1127}));
}

BOOST_AUTO_TEST_SUITE_END()
