// match_output, the integration tests' output-equals-input check, on synthetic streams: a loss,
// a reordering, a duplicate or a corrupt byte anywhere is seen; exact outputs and a replayed header
// followed by the input's tail pass.
#define BOOST_TEST_MODULE output_match
#include "output_match.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace pixtream::test;

namespace {

constexpr std::size_t packet = 188;
constexpr std::size_t packets = 2000;

// An MPEG-TS-like input of random packets: packet 0 video, 1 an SDT, 2 a PAT, 3 a PMT (the header
// chunk is packets 1 to 3, as the source cuts it), the rest random payloads on the video PID.
std::string ts_input() {
    std::mt19937_64 gen(7);
    std::string s(packet * packets, '\0');
    for (auto& ch : s) ch = static_cast<char>(gen() & 0xFFU);
    for (std::size_t i = 0; i < packets; ++i) {
        auto* p = s.data() + i * packet;
        const unsigned pid = i == 1 ? 0x11U : i == 2 ? 0x00U : i == 3 ? 0x1000U : 0x100U;
        p[0] = 0x47;
        p[1] = static_cast<char>(0x40U | (pid >> 8U));
        p[2] = static_cast<char>(pid & 0xFFU);
        p[3] = static_cast<char>(0x10U | (i & 0x0FU));
    }
    return s;
}

const std::string& input() {
    static const std::string in = ts_input();
    return in;
}

std::string piece(std::size_t from_packet, std::size_t to_packet) {
    return input().substr(from_packet * packet, (to_packet - from_packet) * packet);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(output_match_suite)

BOOST_AUTO_TEST_CASE(the_whole_input_is_exact) {
    const auto m = match_output(input(), input());
    BOOST_TEST(m.exact(), m.describe());
    BOOST_TEST(m.start == 0U);
    BOOST_TEST(!m.header.has_value());
}

BOOST_AUTO_TEST_CASE(the_input_from_an_offset_to_its_end_is_exact) {
    const auto m = match_output(piece(700, packets), input());
    BOOST_TEST(m.exact(), m.describe());
    BOOST_TEST(m.start == 700 * packet);
    BOOST_TEST(!m.header.has_value());
}

// A late joiner: the header chunk (SDT, PAT, PMT) replayed, then the stream from a random-access chunk.
BOOST_AUTO_TEST_CASE(a_replayed_header_then_the_tail_is_exact) {
    const auto m = match_output(piece(1, 4) + piece(700, packets), input());
    BOOST_TEST(m.exact(), m.describe());
    BOOST_TEST_REQUIRE(m.header.has_value());
    BOOST_TEST((*m.header == input_range{packet, 4 * packet}));
    BOOST_TEST(m.start == 700 * packet);
}

// The same for Ogg: the header chunk is the input's first pages (BOS first).
BOOST_AUTO_TEST_CASE(a_replayed_ogg_header_then_the_tail_is_exact) {
    auto in = input();
    in.replace(0, 4, "OggS");
    in[4] = 0;
    in[5] = 0x02;  // BOS
    const auto m = match_output(in.substr(0, 4000) + in.substr(200'000), in);
    BOOST_TEST(m.exact(), m.describe());
    BOOST_TEST_REQUIRE(m.header.has_value());
    BOOST_TEST((*m.header == input_range{0, 4000}));
    BOOST_TEST(m.start == 200'000U);
}

// 10 % of the input missing in the first half: one gap, where it is, of the right size.
BOOST_AUTO_TEST_CASE(a_ten_percent_loss_in_the_first_half_is_a_gap) {
    const auto n = input().size();
    const auto out = input().substr(0, n / 5) + input().substr(n / 5 + n / 10);
    const auto m = match_output(out, input());
    BOOST_TEST(!m.exact());
    BOOST_TEST(m.in_order(), m.describe());
    BOOST_TEST(m.reaches_end());
    BOOST_TEST_REQUIRE(m.gaps.size() == 1U, m.describe());
    BOOST_TEST(m.missing() == n / 10);
    BOOST_TEST((m.gaps[0] == input_range{n / 5, n / 5 + n / 10}));
}

// The same loss for a late joiner, behind its replayed header.
BOOST_AUTO_TEST_CASE(a_loss_behind_a_replayed_header_is_a_gap) {
    const auto m = match_output(piece(1, 4) + piece(400, 800) + piece(1000, packets), input());
    BOOST_TEST(!m.exact());
    BOOST_TEST(m.header.has_value());
    BOOST_TEST_REQUIRE(m.gaps.size() == 1U, m.describe());
    BOOST_TEST(m.missing() == 200 * packet);
}

// Data lost right after the first chunks is not mistaken for a header replay: the output begins with
// the input's first packet (video), not with a header chunk.
BOOST_AUTO_TEST_CASE(a_loss_after_the_first_packets_is_a_gap_not_a_header) {
    const auto m = match_output(piece(0, 4) + piece(200, packets), input());
    BOOST_TEST(!m.exact());
    BOOST_TEST(!m.header.has_value());
    BOOST_TEST(m.start == 0U);
    BOOST_TEST(m.gaps.size() == 1U, m.describe());
}

BOOST_AUTO_TEST_CASE(a_piece_longer_than_a_header_is_not_a_header) {
    const auto m = match_output(piece(1, 100) + piece(700, packets), input(), 4096);
    BOOST_TEST(m.start == packet);
    BOOST_TEST(!m.exact());
    BOOST_TEST(!m.header.has_value());
    BOOST_TEST(m.gaps.size() == 1U, m.describe());
}

BOOST_AUTO_TEST_CASE(a_single_missing_byte_is_a_gap) {
    auto out = input();
    out.erase(123'457, 1);
    const auto m = match_output(out, input());
    BOOST_TEST(!m.exact());
    BOOST_TEST(m.missing() == 1U, m.describe());
}

BOOST_AUTO_TEST_CASE(a_reordering_is_malformed) {
    const auto m = match_output(piece(0, 500) + piece(600, 700) + piece(500, 600) + piece(700, packets), input());
    BOOST_TEST(!m.in_order());
    BOOST_TEST(!m.exact());
    BOOST_TEST(m.problem.find("reordered") != std::string::npos, m.problem);
}

BOOST_AUTO_TEST_CASE(a_duplicated_piece_is_malformed) {
    BOOST_TEST(!match_output(piece(0, 500) + piece(490, packets), input()).in_order());
    // A whole piece played twice, and a repeated header in the middle of the stream.
    BOOST_TEST(!match_output(piece(0, 500) + piece(400, 500) + piece(500, packets), input()).in_order());
    BOOST_TEST(!match_output(piece(1, 4) + piece(700, 800) + piece(1, 4) + piece(800, packets), input()).in_order());
}

BOOST_AUTO_TEST_CASE(a_corrupt_byte_is_malformed) {
    auto out = input();
    out[200'001] = static_cast<char>(out[200'001] ^ 0x5A);
    const auto m = match_output(out, input());
    BOOST_TEST(!m.in_order());
    BOOST_TEST(m.problem.find("not in the input") != std::string::npos, m.problem);
}

BOOST_AUTO_TEST_CASE(an_output_that_stops_early_does_not_reach_the_end) {
    const auto m = match_output(piece(0, 1500), input());
    BOOST_TEST(m.in_order());
    BOOST_TEST(m.gaps.empty());
    BOOST_TEST(!m.reaches_end());
    BOOST_TEST(!m.exact());
    BOOST_TEST(m.end == 1500 * packet);
}

BOOST_AUTO_TEST_CASE(an_empty_output_is_malformed) {
    BOOST_TEST(!match_output("", input()).in_order());
    BOOST_TEST(!match_output("", input()).exact());
}

BOOST_AUTO_TEST_SUITE_END()
