#pragma once
// Shared fixtures of the swarm tests: peer ids, a time origin, buffer maps from id lists, printers.
#include "pixtream/core/buffer_map.hpp"
#include "pixtream/core/ids.hpp"
#include "pixtream/core/time.hpp"
#include "pixtream/swarm/scheduler.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <set>
#include <vector>

namespace pixtream::core {

template <std::size_t N, class Tag>
std::ostream& boost_test_print_type(std::ostream& os, const fixed_bytes<N, Tag>& v) {
    return os << v.to_hex().substr(0, 6);
}

inline std::ostream& boost_test_print_type(std::ostream& os, chunk_id id) { return os << '#' << id.value(); }

}  // namespace pixtream::core

namespace pixtream::swarm {

inline std::ostream& boost_test_print_type(std::ostream& os, const action& a) {
    return os << (a.kind == action_kind::request ? "REQUEST " : "CANCEL ") << a.id.value() << " @"
              << a.peer.to_hex().substr(0, 2);
}

inline std::ostream& boost_test_print_type(std::ostream& os, const request_ref& r) {
    return os << r.id.value() << " @" << r.peer.to_hex().substr(0, 2);
}

}  // namespace pixtream::swarm

namespace swarm_test {

using namespace pixtream;
using namespace std::chrono_literals;
using core::chunk_id;

// A recognisable peer id: every byte is `n`.
inline core::peer_id peer(unsigned n) {
    core::peer_id p;
    for (auto& b : p.bytes()) b = static_cast<std::byte>(n);
    return p;
}

// Time origin of every test (away from the clock's epoch so that earlier times stay representable).
inline const core::time_point t0 = core::time_point{} + std::chrono::hours(1);

// Milliseconds from t0 (printable in assertions, unlike time points); -1 for none.
inline std::int64_t ms(std::optional<core::time_point> t) {
    return t ? std::chrono::duration_cast<std::chrono::milliseconds>(*t - t0).count() : -1;
}

inline chunk_id cid(std::uint64_t v) { return chunk_id{v}; }

// A buffer map at `base` holding `ids`.
inline core::buffer_map map_of(std::uint64_t base, std::initializer_list<std::uint64_t> ids,
                               std::size_t capacity = 512) {
    core::buffer_map m(capacity, chunk_id{base});
    for (auto id : ids) m.set(chunk_id{id});
    return m;
}

// A buffer map at `base` holding every id in [from, to).
inline core::buffer_map range_map(std::uint64_t base, std::uint64_t from, std::uint64_t to,
                                  std::size_t capacity = 512) {
    core::buffer_map m(capacity, chunk_id{base});
    for (auto id = from; id < to; ++id) m.set(chunk_id{id});
    return m;
}

// The REQUESTs (or CANCELs) among `actions`.
inline std::vector<swarm::action> of_kind(const std::vector<swarm::action>& actions, swarm::action_kind kind) {
    std::vector<swarm::action> out;
    for (const auto& a : actions) {
        if (a.kind == kind) out.push_back(a);
    }
    return out;
}

inline std::vector<swarm::action> requests(const std::vector<swarm::action>& actions) {
    return of_kind(actions, swarm::action_kind::request);
}

inline std::vector<swarm::action> cancels(const std::vector<swarm::action>& actions) {
    return of_kind(actions, swarm::action_kind::cancel);
}

// The chunk ids of `actions`, in order.
inline std::vector<std::uint64_t> ids_of(const std::vector<swarm::action>& actions) {
    std::vector<std::uint64_t> out;
    for (const auto& a : actions) out.push_back(a.id.value());
    return out;
}

}  // namespace swarm_test
