#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "sample_messages.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace pixtream;
using namespace pixtream::wire;
using test::bytes;

namespace {

// Feeds `stream` in pieces cut at `cuts` (ascending offsets) and collects every message.
std::vector<message> decode_in_pieces(const std::vector<std::byte>& stream, const std::vector<std::size_t>& cuts,
                                      std::error_code& ec) {
    frame_decoder dec;
    std::vector<message> out;
    std::size_t at = 0;
    auto drain = [&] {
        while (auto m = dec.next(ec)) out.push_back(std::move(*m));
    };
    for (std::size_t cut : cuts) {
        dec.feed(std::span(stream).subspan(at, cut - at));
        at = cut;
        drain();
        if (ec) return out;
    }
    dec.feed(std::span(stream).subspan(at));
    drain();
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(frame_decoder_suite)

// Every message, alone and in a stream of all of them, split in two at every byte boundary.
BOOST_AUTO_TEST_CASE(split_at_every_byte_boundary) {
    const auto msgs = test::sample_messages();
    for (const auto& m : msgs) {
        std::vector<std::byte> frame;
        encode(m, frame);
        for (std::size_t cut = 0; cut <= frame.size(); ++cut) {
            BOOST_TEST_CONTEXT(name_of(type_of(m)) << " split at " << cut) {
                std::error_code ec;
                const auto got = decode_in_pieces(frame, {cut}, ec);
                BOOST_TEST_REQUIRE(!ec, ec.message());
                BOOST_TEST_REQUIRE(got.size() == 1U);
                BOOST_TEST((got[0] == m));
            }
        }
    }
    const auto stream = test::encode_all(msgs);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        std::error_code ec;
        const auto got = decode_in_pieces(stream, {cut}, ec);
        BOOST_TEST_REQUIRE(!ec);
        BOOST_TEST_REQUIRE((got == msgs), "stream split at " << cut);
    }
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time_and_random_pieces) {
    const auto msgs = test::sample_messages();
    std::vector<message> many;
    for (int i = 0; i < 20; ++i) many.insert(many.end(), msgs.begin(), msgs.end());
    const auto stream = test::encode_all(many);

    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < stream.size(); ++i) every.push_back(i);
    std::error_code ec;
    BOOST_TEST((decode_in_pieces(stream, every, ec) == many));
    BOOST_TEST(!ec);

    std::mt19937 gen(99);
    for (int round = 0; round < 50; ++round) {
        std::vector<std::size_t> cuts;
        for (std::size_t at = gen() % 200; at < stream.size(); at += 1 + gen() % 700) cuts.push_back(at);
        BOOST_TEST_REQUIRE((decode_in_pieces(stream, cuts, ec) == many), "round " << round);
        BOOST_TEST_REQUIRE(!ec);
    }
}

BOOST_AUTO_TEST_CASE(oversized_frame_rejected_from_its_header) {
    const std::pair<std::size_t, std::vector<std::byte>> cases[] = {
        {max_frame_size, bytes({0xFF, 0xFF, 0xFF, 0xFF})},
        {max_frame_size, bytes({0x00, 0x10, 0x00, 0x81})},  // hard limit + 1
        {256, bytes({0x00, 0x00, 0x01, 0x01, 0x07})},       // receiver's lower limit + 1
    };
    for (const auto& [limit, head] : cases) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            frame_decoder dec(limit);
            dec.feed(head);  // the body never arrives: the length alone is enough
            std::error_code ec;
            BOOST_TEST(!dec.next(ec).has_value());
            BOOST_TEST((ec == errc::frame_too_large));
        }
    }
    // Exactly at the limit is fine.
    frame_decoder dec(200);
    chunk c;
    c.payload.resize(200 - 1 - chunk_body_overhead);  // length field exactly 200
    std::vector<std::byte> frame;
    encode(c, frame);
    dec.feed(frame);
    std::error_code ec;
    BOOST_TEST(dec.next(ec).has_value());
    BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(zero_length_frame_and_sticky_errors) {
    frame_decoder dec;
    dec.feed(bytes({0, 0, 0, 1, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0x00}));
    std::error_code ec;
    BOOST_TEST(dec.next(ec).has_value());  // the keepalive before the bad frame
    BOOST_TEST(!dec.next(ec).has_value());
    BOOST_TEST((ec == errc::empty_frame));
    BOOST_TEST(dec.failed());
    dec.feed(bytes({0, 0, 0, 1, 0x00}));  // a good frame after an error is not decoded
    BOOST_TEST(!dec.next(ec).has_value());
    BOOST_TEST((ec == errc::empty_frame));
}

BOOST_AUTO_TEST_CASE(body_errors_surface_through_the_decoder) {
    frame_decoder dec;
    dec.feed(bytes({0, 0, 0, 2, 0x03, 0x00}));  // HAVE with one byte of id
    std::error_code ec;
    BOOST_TEST(!dec.next(ec).has_value());
    BOOST_TEST((ec == errc::truncated_message));
    frame_decoder dec2;
    dec2.feed(bytes({0, 0, 0, 1, 0x42}));
    BOOST_TEST(!dec2.next(ec).has_value());
    BOOST_TEST((ec == errc::unknown_message_type));
}

BOOST_AUTO_TEST_CASE(limits_clamp) {
    frame_decoder dec;
    dec.set_max_frame(1);
    BOOST_TEST(dec.max_frame() == min_frame_limit);
    dec.set_max_frame(std::size_t{1} << 40);
    BOOST_TEST(dec.max_frame() == max_frame_size);
}

// A 1 MiB chunk read in 64 KiB pieces: the buffer never holds more than the frame plus one read.
BOOST_AUTO_TEST_CASE(memory_stays_bounded) {
    chunk c;
    c.payload.resize(max_chunk_payload, std::byte{0x5A});
    std::vector<std::byte> stream;
    for (int i = 0; i < 4; ++i) {
        c.id = core::chunk_id{static_cast<std::uint64_t>(i)};
        encode(c, stream);
    }
    frame_decoder dec;
    std::size_t at = 0;
    std::size_t got = 0;
    std::size_t peak = 0;
    while (at < stream.size()) {
        const auto n = std::min<std::size_t>(65536, stream.size() - at);
        auto buf = dec.prepare(65536);
        std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(at), n, buf.begin());
        dec.commit(n);
        at += n;
        peak = std::max(peak, dec.buffered());
        std::error_code ec;
        while (auto m = dec.next(ec)) {
            BOOST_TEST_REQUIRE((std::get<chunk>(*m).id == core::chunk_id{got}));
            ++got;
        }
        BOOST_TEST_REQUIRE(!ec);
    }
    BOOST_TEST(got == 4U);
    BOOST_TEST(peak <= frame_header_size + max_frame_size + 65536);
}

// Random bytes never crash the decoder; it either errors or yields messages, and stays bounded.
BOOST_AUTO_TEST_CASE(garbage_streams) {
    std::mt19937_64 gen(5);
    int errors = 0;
    for (int round = 0; round < 2000; ++round) {
        frame_decoder dec(4096);
        std::error_code ec;
        for (int piece = 0; piece < 20 && !ec; ++piece) {
            std::vector<std::byte> junk(3 + gen() % 62);
            for (auto& b : junk) b = static_cast<std::byte>(gen());
            if (gen() % 2) junk[0] = junk[1] = junk[2] = std::byte{0};  // small lengths now and then
            dec.feed(junk);
            while (dec.next(ec)) {
            }
            BOOST_TEST_REQUIRE(dec.buffered() <= 4096U + 4 + 64);
        }
        errors += ec ? 1 : 0;
    }
    BOOST_TEST(errors > 1000);
}

BOOST_AUTO_TEST_SUITE_END()
