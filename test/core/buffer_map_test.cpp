#include "pixtream/core/buffer_map.hpp"

#include <boost/test/unit_test.hpp>

#include <random>
#include <set>
#include <vector>

using namespace pixtream::core;

namespace {

// Reference model: a plain set restricted to the window.
struct model {
    std::uint64_t base;
    std::uint64_t capacity;
    std::set<std::uint64_t> ids;

    void set(std::uint64_t id) {
        if (id >= base && id < base + capacity) ids.insert(id);
    }
    void advance(std::uint64_t b) {
        if (b <= base) return;
        base = b;
        ids.erase(ids.begin(), ids.lower_bound(b));
    }
};

std::vector<std::uint64_t> ids_of(const buffer_map& m) {
    std::vector<std::uint64_t> out;
    m.for_each_set([&](chunk_id id) { out.push_back(id.value()); });
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(buffer_map_suite)

BOOST_AUTO_TEST_CASE(capacity_is_rounded_and_clamped) {
    const std::pair<std::size_t, std::size_t> cases[] = {{0, 64}, {1, 64}, {64, 64}, {65, 128}, {512, 512},
                                                         {5000, buffer_map::max_capacity}};
    for (auto [asked, got] : cases) {
        BOOST_TEST_CONTEXT("asked " << asked) { BOOST_TEST(buffer_map(asked).capacity() == got); }
    }
}

BOOST_AUTO_TEST_CASE(set_test_reset_inside_window_only) {
    buffer_map m(128, chunk_id{1000});
    BOOST_TEST(m.set(chunk_id{1000}));
    BOOST_TEST(m.set(chunk_id{1127}));
    BOOST_TEST(!m.set(chunk_id{999}));
    BOOST_TEST(!m.set(chunk_id{1128}));
    BOOST_TEST(m.count() == 2U);
    BOOST_TEST(m.set(chunk_id{1000}));  // idempotent
    BOOST_TEST(m.count() == 2U);
    BOOST_TEST(m.test(chunk_id{1127}));
    BOOST_TEST(!m.test(chunk_id{1126}));
    BOOST_TEST(!m.test(chunk_id{1127 + 128}));  // same ring slot, outside the window
    m.reset(chunk_id{1000});
    BOOST_TEST(!m.test(chunk_id{1000}));
    BOOST_TEST(m.count() == 1U);
}

BOOST_AUTO_TEST_CASE(advance_drops_old_ids_and_never_goes_back) {
    buffer_map m(64, chunk_id{0});
    for (std::uint64_t i = 0; i < 64; ++i) m.set(chunk_id{i});
    m.advance_to(chunk_id{10});
    BOOST_TEST(m.count() == 54U);
    BOOST_TEST(!m.test(chunk_id{9}));
    BOOST_TEST(m.test(chunk_id{10}));
    BOOST_TEST(!m.test(chunk_id{64}));  // slot reused by the slide is empty
    BOOST_TEST(m.set(chunk_id{73}));
    m.advance_to(chunk_id{5});  // backwards: ignored
    BOOST_TEST((m.base() == chunk_id{10}));
    m.advance_to(chunk_id{1000});  // jump beyond the window clears everything
    BOOST_TEST(m.empty());
    BOOST_TEST((m.base() == chunk_id{1000}));
}

BOOST_AUTO_TEST_CASE(advance_to_fit) {
    buffer_map m(64, chunk_id{0});
    m.set(chunk_id{3});
    m.advance_to_fit(chunk_id{63});
    BOOST_TEST((m.base() == chunk_id{0}));
    m.advance_to_fit(chunk_id{66});
    BOOST_TEST((m.base() == chunk_id{3}));
    BOOST_TEST(m.test(chunk_id{3}));
    BOOST_TEST(m.set(chunk_id{66}));
}

BOOST_AUTO_TEST_CASE(scans) {
    buffer_map m(256, chunk_id{100});
    BOOST_TEST(!m.next_set(chunk_id{0}).has_value());
    BOOST_TEST(!m.last_set().has_value());
    BOOST_TEST(m.next_missing(chunk_id{0}).value().value() == 100U);
    for (std::uint64_t i = 100; i < 230; ++i) m.set(chunk_id{i});
    m.set(chunk_id{300});
    BOOST_TEST(m.next_missing(chunk_id{100}).value().value() == 230U);
    BOOST_TEST(m.next_set(chunk_id{230}).value().value() == 300U);
    BOOST_TEST(m.last_set().value().value() == 300U);
    BOOST_TEST(!m.next_set(chunk_id{301}).has_value());
    BOOST_TEST(m.next_missing(chunk_id{500}).has_value() == false);
}

// Random operations against the reference model, across many window slides (ring wrap-around).
BOOST_AUTO_TEST_CASE(matches_reference_model) {
    for (std::size_t cap : {64U, 192U, 512U}) {
        BOOST_TEST_CONTEXT("capacity " << cap) {
            std::mt19937_64 gen(cap);
            buffer_map m(cap, chunk_id{7});
            model ref{7, cap, {}};
            for (int step = 0; step < 20000; ++step) {
                const auto op = gen() % 10;
                if (op < 7) {
                    const auto id = ref.base + gen() % (cap + 20);
                    m.set(chunk_id{id});
                    ref.set(id);
                } else if (op < 9) {
                    const auto id = ref.base + gen() % cap;
                    m.reset(chunk_id{id});
                    ref.ids.erase(id);
                } else {
                    const auto b = ref.base + gen() % (cap / 2 + 1);
                    m.advance_to(chunk_id{b});
                    ref.advance(b);
                }
                if (step % 97 == 0) {
                    BOOST_TEST_REQUIRE(m.count() == ref.ids.size());
                    const auto got = ids_of(m);
                    BOOST_TEST_REQUIRE(got == std::vector<std::uint64_t>(ref.ids.begin(), ref.ids.end()),
                                       boost::test_tools::per_element());
                    const auto last = m.last_set();
                    BOOST_TEST_REQUIRE(last.has_value() == !ref.ids.empty());
                    if (last) BOOST_TEST_REQUIRE(last->value() == *ref.ids.rbegin());
                    const auto from = ref.base + gen() % cap;
                    std::uint64_t miss = from;
                    while (ref.ids.count(miss)) ++miss;
                    const auto nm = m.next_missing(chunk_id{from});
                    if (miss < ref.base + cap) BOOST_TEST_REQUIRE(nm.value().value() == miss);
                    else BOOST_TEST_REQUIRE(!nm.has_value());
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(equality) {
    buffer_map a(64, chunk_id{5});
    buffer_map b(64, chunk_id{5});
    a.set(chunk_id{6});
    BOOST_TEST(!(a == b));
    b.set(chunk_id{6});
    BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_SUITE_END()
