// Encode/decode throughput of the wire codec, and chunk signing/verification rate.
// Each benchmark checks its own output and reports an error if it is wrong.
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "pixtream/wire/signing.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>

using namespace pixtream;
using namespace pixtream::wire;

namespace {

chunk make_chunk(std::size_t size, std::uint64_t id) {
    chunk c;
    c.id = core::chunk_id{id};
    c.timestamp = 1'700'000'000'000'000ULL + id;
    c.flags = chunk::flag_random_access;
    c.payload.resize(size);
    for (std::size_t i = 0; i < size; ++i) c.payload[i] = static_cast<std::byte>(i * 31 + id);
    return c;
}

void encode_chunk(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const message m = make_chunk(size, 1);
    std::vector<std::byte> out;
    for (auto _ : state) {
        out.clear();
        encode(m, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out.size() != 4 + 1 + chunk_body_overhead + size) state.SkipWithError("wrong frame size");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void encode_have(benchmark::State& state) {
    std::vector<std::byte> out;
    std::uint64_t id = 0;
    for (auto _ : state) {
        out.clear();
        encode(have{core::chunk_id{++id}}, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out.size() != 13) state.SkipWithError("wrong frame size");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 13));
}

// Decodes a stream of 32 chunk frames read in 64 KiB pieces, as from a socket.
void decode_chunks(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    constexpr std::uint64_t frames = 32;
    std::vector<std::byte> stream;
    for (std::uint64_t i = 0; i < frames; ++i) encode(make_chunk(size, i), stream);
    bool ok = true;
    for (auto _ : state) {
        frame_decoder dec;
        std::uint64_t got = 0;
        std::error_code ec;
        for (std::size_t at = 0; at < stream.size();) {
            const auto n = std::min<std::size_t>(65536, stream.size() - at);
            std::memcpy(dec.prepare(n).data(), stream.data() + at, n);
            dec.commit(n);
            at += n;
            while (auto m = dec.next(ec)) {
                const auto& c = std::get<chunk>(*m);
                ok = ok && c.id == core::chunk_id{got} && c.payload.size() == size;
                ++got;
            }
        }
        ok = ok && got == frames && !ec;
    }
    if (!ok) state.SkipWithError("decoded stream differs from the encoded one");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}

void decode_have(benchmark::State& state) {
    constexpr std::uint64_t count = 4096;
    std::vector<std::byte> stream;
    for (std::uint64_t i = 0; i < count; ++i) encode(have{core::chunk_id{i}}, stream);
    bool ok = true;
    for (auto _ : state) {
        frame_decoder dec;
        dec.feed(stream);
        std::uint64_t sum = 0;
        std::error_code ec;
        while (auto m = dec.next(ec)) sum += std::get<have>(*m).id.value();
        ok = ok && sum == count * (count - 1) / 2;
    }
    if (!ok) state.SkipWithError("decoded ids differ");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}

void sign_chunk_bench(benchmark::State& state) {
    const auto kp = generate_keypair();
    auto c = make_chunk(static_cast<std::size_t>(state.range(0)), 7);
    for (auto _ : state) {
        sign_chunk(c, kp.secret);
        benchmark::DoNotOptimize(c.sig.data());
    }
    if (!verify_chunk(c, kp.public_key)) state.SkipWithError("signature does not verify");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void verify_chunk_bench(benchmark::State& state) {
    const auto kp = generate_keypair();
    auto c = make_chunk(static_cast<std::size_t>(state.range(0)), 7);
    sign_chunk(c, kp.secret);
    bool ok = true;
    for (auto _ : state) ok = ok && verify_chunk(c, kp.public_key);
    if (!ok) state.SkipWithError("valid signature rejected");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

}  // namespace

BENCHMARK(encode_chunk)->Arg(1024)->Arg(16384)->Arg(65536);
BENCHMARK(encode_have);
BENCHMARK(decode_chunks)->Arg(1024)->Arg(16384)->Arg(65536);
BENCHMARK(decode_have);
BENCHMARK(sign_chunk_bench)->Arg(16384)->Arg(65536);
BENCHMARK(verify_chunk_bench)->Arg(16384)->Arg(65536);
