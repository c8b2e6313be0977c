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
