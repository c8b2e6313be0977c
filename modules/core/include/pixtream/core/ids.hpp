#pragma once
// Strong identifier types: chunk ids (sequence numbers), peer ids and channel keys.
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace pixtream::core {

// Sequence number of a chunk within a channel. Chunk ids only ever grow; arithmetic is explicit.
class chunk_id {
public:
    using value_type = std::uint64_t;

    constexpr chunk_id() noexcept = default;
    constexpr explicit chunk_id(value_type v) noexcept : value_(v) {}

    constexpr value_type value() const noexcept { return value_; }
    constexpr chunk_id next() const noexcept { return chunk_id{value_ + 1}; }

    friend constexpr auto operator<=>(chunk_id, chunk_id) noexcept = default;
    friend constexpr chunk_id operator+(chunk_id a, value_type n) noexcept { return chunk_id{a.value_ + n}; }
    friend constexpr chunk_id operator-(chunk_id a, value_type n) noexcept { return chunk_id{a.value_ - n}; }
    // Signed distance b - a, for ids that are at most 2^63 apart (always true in practice).
    friend constexpr std::int64_t distance(chunk_id a, chunk_id b) noexcept {
        return static_cast<std::int64_t>(b.value_ - a.value_);
    }
    chunk_id& operator++() noexcept {
        ++value_;
        return *this;
    }

private:
    value_type value_ = 0;
};

// A fixed-size opaque byte string with a hex text form. `Tag` keeps different ids apart.
template <std::size_t N, class Tag>
class fixed_bytes {
public:
    static constexpr std::size_t size = N;
    using array_type = std::array<std::byte, N>;

    constexpr fixed_bytes() noexcept = default;
    constexpr explicit fixed_bytes(const array_type& b) noexcept : bytes_(b) {}

    const array_type& bytes() const noexcept { return bytes_; }
    array_type& bytes() noexcept { return bytes_; }
    const unsigned char* data() const noexcept { return reinterpret_cast<const unsigned char*>(bytes_.data()); }

    friend constexpr auto operator<=>(const fixed_bytes&, const fixed_bytes&) noexcept = default;

    bool is_zero() const noexcept {
        for (auto b : bytes_) {
            if (b != std::byte{0}) return false;
        }
        return true;
    }

    std::string to_hex() const {
        static constexpr char digits[] = "0123456789abcdef";
        std::string out;
        out.reserve(2 * N);
        for (auto b : bytes_) {
            const auto v = std::to_integer<unsigned>(b);
            out.push_back(digits[v >> 4U]);
            out.push_back(digits[v & 0xFU]);
        }
        return out;
    }

    // Parses exactly 2*N hex digits (either case); nullopt otherwise.
    static std::optional<fixed_bytes> from_hex(std::string_view text) {
        if (text.size() != 2 * N) return std::nullopt;
        fixed_bytes out;
        for (std::size_t i = 0; i < N; ++i) {
            const int hi = hex_value(text[2 * i]);
            const int lo = hex_value(text[2 * i + 1]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.bytes_[i] = static_cast<std::byte>((hi << 4) | lo);
        }
        return out;
    }

    template <std::uniform_random_bit_generator G>
    static fixed_bytes random(G& gen) {
        fixed_bytes out;
        std::uniform_int_distribution<unsigned> dist(0, 255);
        for (auto& b : out.bytes_) b = static_cast<std::byte>(dist(gen));
        return out;
    }

private:
    static constexpr int hex_value(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    array_type bytes_{};
};

struct peer_id_tag {};
struct channel_key_tag {};

// Random identity a peer picks at start-up and sends in its handshake.
using peer_id = fixed_bytes<20, peer_id_tag>;
// The source's Ed25519 public key: the channel's identity and the key every chunk is verified with.
using channel_key = fixed_bytes<32, channel_key_tag>;

// Stable 64-bit hash of a fixed_bytes value (its leading bytes are random already).
template <std::size_t N, class Tag>
std::size_t hash_value(const fixed_bytes<N, Tag>& v) noexcept {
    std::size_t h = 1469598103934665603ULL;
    for (auto b : v.bytes()) h = (h ^ std::to_integer<std::size_t>(b)) * 1099511628211ULL;
    return h;
}

}  // namespace pixtream::core

template <>
struct std::hash<pixtream::core::chunk_id> {
    std::size_t operator()(pixtream::core::chunk_id id) const noexcept {
        return std::hash<std::uint64_t>{}(id.value());
    }
};

template <std::size_t N, class Tag>
struct std::hash<pixtream::core::fixed_bytes<N, Tag>> {
    std::size_t operator()(const pixtream::core::fixed_bytes<N, Tag>& v) const noexcept {
        return pixtream::core::hash_value(v);
    }
};
