#include "pixtream/peer/chunk_store.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;

namespace {

wire::chunk_ptr make(std::uint64_t id, std::uint8_t flags = 0, std::size_t size = 10) {
    auto c = std::make_shared<wire::chunk>();
    c->id = core::chunk_id{id};
    c->flags = flags;
    c->payload.resize(size);
    return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chunk_store_suite)

BOOST_AUTO_TEST_CASE(interval_comes_from_a_span_of_chunks_never_from_neighbours) {
    peer::chunk_store s(64);
    auto at = [](std::uint64_t id, std::uint64_t ts) {
        auto c = make(id);
        std::const_pointer_cast<wire::chunk>(c)->timestamp = ts;
        return c;
    };
    BOOST_TEST(!s.interval().has_value());
    // Two neighbouring chunks cut 20 ms apart (one cut early before a keyframe): no estimate.
    s.insert(at(100, 10'000'000));
    s.insert(at(101, 10'020'000));
    BOOST_TEST(!s.interval().has_value());
    // Chunks 97..101 at 0.5 s spacing except that last pair: 4 ids over 1.52 s.
    s.insert(at(97, 8'500'000));
    BOOST_REQUIRE(s.interval().has_value());
    BOOST_TEST(*s.interval() == (10.02 - 8.5) / 4, boost::test_tools::tolerance(1e-9));
    // Only the newest 32 ids count: an old chunk far back is not used.
    s.insert(at(140, 30'000'000));
    s.insert(at(136, 28'000'000));
    BOOST_REQUIRE(s.interval().has_value());
    BOOST_TEST(*s.interval() == 0.5, boost::test_tools::tolerance(1e-9));  // 136..140 (101 is 39 ids back)
    // Timestamps that do not increase give nothing.
    peer::chunk_store t(64);
    t.insert(at(10, 5'000'000));
    t.insert(at(20, 5'000'000));
    BOOST_TEST(!t.interval().has_value());
}

BOOST_AUTO_TEST_CASE(window_slides_and_keeps_history_below_the_first_chunk) {
    peer::chunk_store s(64);
    BOOST_TEST(s.insert(make(1000)));     // first chunk: the window ends here
    BOOST_TEST(s.insert(make(990)));      // older chunks fetched later still fit
    BOOST_TEST(!s.insert(make(990)));     // duplicate
    BOOST_TEST(!s.insert(make(900)));     // older than the window
    BOOST_TEST(s.newest().value().value() == 1000U);
    BOOST_TEST(s.bytes() == 20U);
    BOOST_TEST(s.insert(make(1060)));     // slides: 990 drops out (window is 997..1060)
    BOOST_TEST(!s.has(core::chunk_id{990}));
    BOOST_TEST(s.has(core::chunk_id{1000}));
    BOOST_TEST(s.bytes() == 20U);
    BOOST_TEST(s.insert(make(5000)));     // a jump past the whole window clears it
    BOOST_TEST(!s.has(core::chunk_id{1060}));
    BOOST_TEST(s.bytes() == 10U);
    BOOST_TEST(s.map().count() == 1U);
}

BOOST_AUTO_TEST_CASE(header_chunks_are_pinned_beyond_the_window) {
    peer::chunk_store s(64);
    s.insert(make(0, wire::chunk::flag_header));
    for (std::uint64_t i = 1; i < 500; ++i) s.insert(make(i));
    BOOST_TEST(s.has(core::chunk_id{0}));
    BOOST_TEST(!s.map().test(core::chunk_id{0}));  // not advertised in the window
    for (std::uint64_t i = 0; i < peer::chunk_store::pinned_headers; ++i) s.insert(make(500 + i, wire::chunk::flag_header));
    BOOST_TEST(!s.has(core::chunk_id{0}));  // only the newest few are kept
    BOOST_TEST(s.has(core::chunk_id{500}));
}

BOOST_AUTO_TEST_SUITE_END()
