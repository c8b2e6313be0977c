#pragma once
// Shared by the libFuzzer targets: a check that holds in every build type, a cursor over the fuzzer's
// input, the "split the stream at fuzzer-chosen points" layout, and seed writing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// A property of the code under test: on failure, print it and abort, so libFuzzer keeps the input as a
// crash file. Unlike assert(), it is never compiled out.
#define PIXTREAM_FUZZ_CHECK(cond) \
    ((cond) ? static_cast<void>(0) : ::pixtream::fuzz::check_failed(#cond, __FILE__, __LINE__))

namespace pixtream::fuzz {

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "pixtream fuzz check failed: %s (%s:%d)\n", what, file, line);
    std::abort();
}

// Reads big-endian integers from the front of the input; past its end it yields zeros.
class input_cursor {
public:
    explicit input_cursor(std::span<const std::uint8_t> in) noexcept : in_(in) {}

    std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(take(1)); }
    std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(take(2)); }
    std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(take(4)); }
    // Everything not read yet.
    std::span<const std::uint8_t> rest() const noexcept { return in_.subspan(pos_); }

private:
    std::uint64_t take(std::size_t n) noexcept {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v <<= 8U;
            if (pos_ < in_.size()) v |= in_[pos_++];
        }
        return v;
    }

    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
};

// The byte stream a socket would deliver, and how it arrives: as `pieces` (their sizes add up to
// stream.size(); a piece may be empty, as a read of zero bytes).
//   split_stream := count:u8  size[count % (max_splits + 1)]:u16  stream
// Each size is capped to what is left; whatever the sizes leave over arrives as the last piece.
struct split_stream {
    static constexpr std::size_t max_splits = 64;

    std::vector<std::size_t> pieces;
    std::span<const std::uint8_t> stream;

    static split_stream read(input_cursor& in) {
        split_stream s;
        const std::size_t count = in.u8() % (max_splits + 1);
        std::vector<std::size_t> sizes(count);
        for (auto& size : sizes) size = in.u16();
        s.stream = in.rest();
        std::size_t left = s.stream.size();
        for (const auto size : sizes) {
            const auto n = std::min(size, left);
            s.pieces.push_back(n);
            left -= n;
        }
        if (left > 0) s.pieces.push_back(left);
        return s;
    }
};

// Builds inputs for the seeds in the layouts above.
class seed_writer {
public:
    seed_writer& u8(std::uint8_t v) { return put(v, 1); }
    seed_writer& u16(std::uint16_t v) { return put(v, 2); }
    seed_writer& u32(std::uint32_t v) { return put(v, 4); }
    // A split_stream header: the piece sizes (at most split_stream::max_splits).
    seed_writer& splits(const std::vector<std::uint16_t>& sizes) {
        u8(static_cast<std::uint8_t>(sizes.size()));
        for (const auto s : sizes) u16(s);
        return *this;
    }
    seed_writer& bytes(std::span<const std::byte> b) {
        for (const auto x : b) out_.push_back(std::to_integer<std::uint8_t>(x));
        return *this;
    }
    seed_writer& text(std::string_view t) {
        out_.insert(out_.end(), t.begin(), t.end());
        return *this;
    }
    std::vector<std::uint8_t> take() { return std::move(out_); }

private:
    seed_writer& put(std::uint64_t v, std::size_t n) {
        for (std::size_t i = n; i-- > 0;) out_.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xFFU));
        return *this;
    }

    std::vector<std::uint8_t> out_;
};

struct seed {
    std::string name;
    std::vector<std::uint8_t> data;
};

// Call from LLVMFuzzerInitialize. With `--write-seeds=DIR` (libFuzzer ignores arguments that start with
// "--"), writes the target's seeds into DIR and exits; otherwise does nothing.
inline void handle_write_seeds(int argc, char** argv, const std::function<std::vector<seed>()>& make_seeds) {
    constexpr std::string_view flag = "--write-seeds=";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with(flag)) continue;
        const std::filesystem::path dir(arg.substr(flag.size()));
        std::filesystem::create_directories(dir);
        const auto seeds = make_seeds();
        for (const auto& s : seeds) {
            std::ofstream out(dir / s.name, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(s.data.data()), static_cast<std::streamsize>(s.data.size()));
            if (!out) {
                std::fprintf(stderr, "cannot write %s\n", (dir / s.name).c_str());
                std::exit(1);
            }
        }
        std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
        std::exit(0);
    }
}

}  // namespace pixtream::fuzz
