// Chunk picker decision latency: 50 neighbours x a 512-chunk window, as in a live swarm.
// Every benchmark checks that each REQUEST it produced is valid (in the window, not held, held by
// its target neighbour, within that neighbour's in-flight limit) and reports an error otherwise.
#include "pixtream/swarm/scheduler.hpp"

#include <benchmark/benchmark.h>

#include <random>
#include <unordered_map>

using namespace pixtream;
using namespace pixtream::swarm;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t peers = 50;
constexpr std::size_t window = 512;
constexpr std::size_t per_peer = 8;

core::peer_id peer(std::size_t i) {
    core::peer_id p;
    p.bytes()[0] = static_cast<std::byte>(i);
    p.bytes()[1] = static_cast<std::byte>(i >> 8);
    return p;
}

scheduler_config config() {
    scheduler_config c;
    c.window = window;
    c.pipeline.max_in_flight_per_peer = per_peer;
    c.seed = 1;
    return c;
}

// A scheduler at playhead 0 whose neighbours each hold a random `fill` of the window, with deadlines
// such that the first 30 chunks are urgent.
scheduler make_swarm(double fill, core::time_point now) {
    scheduler s(config(), core::chunk_id{0});
    s.set_deadlines({core::chunk_id{0}, now + 1s, 100ms});
    std::mt19937_64 gen(7);
    std::bernoulli_distribution holds(fill);
    for (std::size_t p = 0; p < peers; ++p) {
        core::buffer_map m(window, core::chunk_id{0});
        for (std::uint64_t id = 0; id < window; ++id) {
            if (holds(gen)) m.set(core::chunk_id{id});
        }
        s.on_bitmap(peer(p), m);
    }
    return s;
}

bool valid(const scheduler& s, const std::vector<action>& out) {
    std::unordered_map<core::peer_id, std::size_t> per;
    for (const auto& a : out) {
        if (a.kind != action_kind::request) continue;
        if (a.id < s.playhead() || a.id >= s.window_end() || s.has(a.id)) return false;
        const auto* m = s.holdings().map_of(a.peer);
        if (m == nullptr || !m->test(a.id)) return false;
        if (++per[a.peer] > per_peer) return false;
    }
    return true;
}

// One poll from an idle state: up to 50 x 8 = 400 decisions over 512 candidate chunks.
void poll_cold(benchmark::State& state) {
    const core::time_point now{};
    const auto base = make_swarm(0.7, now);
    std::vector<action> out;
    out.reserve(peers * per_peer);
    std::size_t decisions = 0;
    bool ok = true;
    for (auto _ : state) {
        state.PauseTiming();
        auto s = base;
        out.clear();
        state.ResumeTiming();
        s.poll(now, out);
        benchmark::DoNotOptimize(out.data());
        state.PauseTiming();
        decisions += out.size();
        ok = ok && out.size() == peers * per_peer && valid(s, out);
        state.ResumeTiming();
    }
    if (!ok) state.SkipWithError("invalid or missing decisions");
    state.counters["decisions_per_poll"] = static_cast<double>(decisions) / static_cast<double>(state.iterations());
    state.counters["seconds_per_decision"] = benchmark::Counter(static_cast<double>(decisions),
                                                          benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Steady live streaming: each step one new chunk appears at the live edge (every neighbour HAVEs it
// over time), requested chunks arrive, the window slides by one, and the picker decides again.
void poll_steady(benchmark::State& state) {
    core::time_point now{};
    auto s = make_swarm(0.9, now);
    std::vector<action> out;
    std::vector<action> inflight;
    std::mt19937_64 gen(3);
    std::uint64_t edge = window;
    std::size_t decisions = 0;
    bool ok = true;
    for (auto _ : state) {
        now += 100ms;
        for (const auto& a : inflight) s.on_chunk(a.peer, a.id, 16384, now);
        inflight.clear();
        s.set_window(s.playhead() + 1);
        for (std::size_t p = 0; p < peers; ++p) {
            if (gen() % 4 != 0) s.on_have(peer(p), core::chunk_id{edge - 1 - gen() % 8});
        }
        ++edge;
        out.clear();
        s.poll(now, out);
        for (const auto& a : out) {
            if (a.kind == action_kind::request) inflight.push_back(a);
        }
        decisions += out.size();
        ok = ok && valid(s, out);
    }
    if (!ok || decisions == 0) state.SkipWithError("invalid or missing decisions");
    state.counters["decisions_per_poll"] = static_cast<double>(decisions) / static_cast<double>(state.iterations());
}

void on_have(benchmark::State& state) {
    const core::time_point now{};
    auto s = make_swarm(0.5, now);
    std::uint64_t i = 0;
    for (auto _ : state) {
        s.on_have(peer(i % peers), core::chunk_id{(i * 7) % window});
        ++i;
    }
    if (s.holders(core::chunk_id{0}) == 0) state.SkipWithError("HAVEs not counted");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(poll_cold)->Unit(benchmark::kMicrosecond);
BENCHMARK(poll_steady)->Unit(benchmark::kMicrosecond);
BENCHMARK(on_have);
