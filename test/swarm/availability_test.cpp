#include "pixtream/swarm/availability.hpp"

#include "helpers.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace swarm_test;
using swarm::availability;

namespace {

// Holder counts recomputed from the neighbours' maps: what availability's incremental counts must equal.
std::size_t recount(const availability& a, const std::vector<core::peer_id>& peers, chunk_id id) {
    if (!a.in_window(id)) return 0;
    std::size_t n = 0;
    for (const auto& p : peers) n += a.holds(p, id) ? 1U : 0U;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(availability_suite)

BOOST_AUTO_TEST_CASE(window_is_rounded_like_buffer_maps) {
    const std::pair<std::size_t, std::size_t> cases[] = {{0, 64}, {100, 128}, {512, 512}, {9999, 4096}};
    for (auto [asked, got] : cases) {
        BOOST_TEST_CONTEXT("asked " << asked) { BOOST_TEST(availability(asked).window() == got); }
    }
}

BOOST_AUTO_TEST_CASE(counts_follow_bitmaps_haves_and_removal) {
    availability a(64, cid(0));
    a.on_bitmap(peer(1), map_of(0, {1, 2, 3}));
    a.on_bitmap(peer(2), map_of(0, {2, 3}));
    a.on_have(peer(3), cid(3));
    BOOST_TEST(a.peer_count() == 3U);
    BOOST_TEST(a.holders(cid(0)) == 0U);
    BOOST_TEST(a.holders(cid(1)) == 1U);
    BOOST_TEST(a.holders(cid(2)) == 2U);
    BOOST_TEST(a.holders(cid(3)) == 3U);
    a.on_have(peer(3), cid(3));  // repeated HAVE counts once
    BOOST_TEST(a.holders(cid(3)) == 3U);

    // A new bitmap replaces the old one.
    a.on_bitmap(peer(1), map_of(0, {5}));
    BOOST_TEST(a.holders(cid(1)) == 0U);
    BOOST_TEST(a.holders(cid(2)) == 1U);
    BOOST_TEST(a.holders(cid(5)) == 1U);

    a.remove_peer(peer(2));
    a.remove_peer(peer(9));  // unknown: no-op
    BOOST_TEST(a.peer_count() == 2U);
    BOOST_TEST(a.holders(cid(2)) == 0U);
    BOOST_TEST(a.holders(cid(3)) == 1U);
    BOOST_TEST(!a.holds(peer(2), cid(3)));
    BOOST_TEST(a.map_of(peer(2)) == nullptr);
}

BOOST_AUTO_TEST_CASE(bitmap_bases_different_from_ours) {
    // Our window is [100, 164). Each case: the neighbour's bitmap, then ids and their expected holder count.
    struct test_case {
        const char* name;
        core::buffer_map map;
        std::vector<std::pair<std::uint64_t, std::size_t>> expect;
    };
    const test_case cases[] = {
        {"base below ours", range_map(40, 90, 110), {{90, 0}, {99, 0}, {100, 1}, {109, 1}, {110, 0}}},
        {"same base", range_map(100, 100, 164), {{100, 1}, {163, 1}, {164, 0}}},
        {"base inside our window", range_map(150, 150, 200), {{149, 0}, {150, 1}, {163, 1}, {164, 0}}},
        {"base past our window", range_map(300, 300, 310), {{163, 0}, {300, 0}}},
        {"base far below, nothing left", range_map(0, 0, 64), {{63, 0}, {100, 0}}},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            availability a(64, cid(100));
            a.on_bitmap(peer(1), c.map);
            for (auto [id, n] : c.expect) {
                BOOST_TEST_CONTEXT("id " << id) { BOOST_TEST(a.holders(cid(id)) == n); }
            }
            // Whatever the bitmap held at or after our base is remembered, even beyond our window.
            for (std::uint64_t id = 100; id < 400; ++id) {
                BOOST_TEST_CONTEXT("remembered " << id) {
                    BOOST_TEST(a.holds(peer(1), cid(id)) == c.map.test(cid(id)));
                }
            }
            BOOST_TEST(a.map_of(peer(1))->base() >= cid(100));
        }
    }
}

BOOST_AUTO_TEST_CASE(have_beyond_window_is_counted_once_the_window_reaches_it) {
    availability a(64, cid(100));
    a.on_have(peer(1), cid(300));
    a.on_have(peer(2), cid(300));
    a.on_have(peer(1), cid(99));  // below our window: ignored
    BOOST_TEST(a.holders(cid(300)) == 0U);
    BOOST_TEST(a.holds(peer(1), cid(300)));
    BOOST_TEST(!a.holds(peer(1), cid(99)));

    a.advance_to(cid(250));  // window [250, 314)
    BOOST_TEST(a.holders(cid(300)) == 2U);
    a.advance_to(cid(200));  // never back
    BOOST_TEST(a.base() == cid(250));
    a.advance_to(cid(301));
    BOOST_TEST(a.holders(cid(300)) == 0U);
    BOOST_TEST(!a.holds(peer(1), cid(300)));
}

BOOST_AUTO_TEST_CASE(have_past_the_neighbour_map_slides_it_and_fixes_counts) {
    const auto span = availability::neighbour_capacity;
    availability a(64, cid(0));
    a.on_bitmap(peer(1), map_of(0, {0, 1, 63}));
    BOOST_TEST(a.holders(cid(0)) == 1U);
    // A HAVE so far ahead that ids 0 and 1 fall out of the neighbour's map (63 stays).
    a.on_have(peer(1), cid(span + 1));
    BOOST_TEST(a.map_of(peer(1))->base() == cid(2));
    BOOST_TEST(a.holders(cid(0)) == 0U);
    BOOST_TEST(a.holders(cid(1)) == 0U);
    BOOST_TEST(a.holders(cid(63)) == 1U);
    BOOST_TEST(a.holds(peer(1), cid(span + 1)));
}

BOOST_AUTO_TEST_CASE(have_below_the_neighbour_map_base_moves_it_back_when_it_fits) {
    availability a(64, cid(100));
    a.on_bitmap(peer(1), map_of(120, {120, 121}));
    a.on_have(peer(1), cid(110));
    BOOST_TEST(a.holds(peer(1), cid(110)));
    BOOST_TEST(a.holds(peer(1), cid(121)));
    BOOST_TEST(a.holders(cid(110)) == 1U);
    BOOST_TEST(a.holders(cid(121)) == 1U);
}

BOOST_AUTO_TEST_CASE(advance_far_recounts_the_whole_window) {
    availability a(64, cid(0));
    a.on_bitmap(peer(1), range_map(0, 0, 512));
    a.on_bitmap(peer(2), range_map(0, 200, 300));
    a.advance_to(cid(1000));  // everything dropped
    BOOST_TEST(a.holders(cid(1000)) == 0U);
    availability b(64, cid(0));
    b.on_bitmap(peer(1), range_map(0, 0, 512));
    b.on_bitmap(peer(2), range_map(0, 200, 300));
    b.advance_to(cid(250));  // jump past the old window's end
    BOOST_TEST(b.holders(cid(250)) == 2U);
    BOOST_TEST(b.holders(cid(299)) == 2U);
    BOOST_TEST(b.holders(cid(300)) == 1U);
    BOOST_TEST(b.holders(cid(313)) == 1U);
}

BOOST_AUTO_TEST_CASE(random_updates_keep_counts_equal_to_a_recount) {
    std::mt19937_64 gen(7);
    availability a(128, cid(0));
    std::vector<core::peer_id> peers;
    for (unsigned i = 1; i <= 6; ++i) peers.push_back(peer(i));
    std::uint64_t base = 0;
    for (int step = 0; step < 3000; ++step) {
        const auto& p = peers[gen() % peers.size()];
        switch (gen() % 10) {
        case 0: {
            const auto b = base + gen() % 200 - std::min<std::uint64_t>(base, 50);
            core::buffer_map m(256, cid(b));
            for (int k = 0; k < 40; ++k) m.set(cid(b + gen() % 256));
            a.on_bitmap(p, m);
            break;
        }
        case 1: a.remove_peer(p); break;
        case 2: base += gen() % 40; a.advance_to(cid(base)); break;
        case 3: a.on_have(p, cid(base + gen() % 5000)); break;
        default: a.on_have(p, cid(base + gen() % 300)); break;
        }
        if (step % 50 == 0) {
            for (auto id = base; id < base + 140; ++id) {
                BOOST_TEST_CONTEXT("step " << step << " id " << id) {
                    BOOST_TEST(a.holders(cid(id)) == recount(a, peers, cid(id)));
                }
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
