#pragma once
// Time as an input: pure modules never read a clock themselves; callers pass `time_point`s in.
#include <chrono>
#include <cstdint>

namespace pixtream::core {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Seconds as a double, for rates and reports.
constexpr double to_seconds(duration d) noexcept { return std::chrono::duration<double>(d).count(); }

constexpr duration from_seconds(double s) noexcept {
    return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s));
}

// Wall-clock microseconds since the Unix epoch: the unit of a chunk's source timestamp on the wire.
using wall_micros = std::uint64_t;

}  // namespace pixtream::core
