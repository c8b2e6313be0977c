#pragma once
// Big-endian byte cursors used by the codec (private to modules/wire).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace pixtream::wire::detail {

template <class UInt>
void store_be(std::byte* out, UInt v) noexcept {
    for (std::size_t i = 0; i < sizeof(UInt); ++i) {
        out[sizeof(UInt) - 1 - i] = static_cast<std::byte>(v & 0xFFU);
        v = static_cast<UInt>(v >> 8U);
    }
}

template <class UInt>
UInt load_be(const std::byte* in) noexcept {
    UInt v = 0;
    for (std::size_t i = 0; i < sizeof(UInt); ++i) v = static_cast<UInt>((v << 8U) | std::to_integer<UInt>(in[i]));
    return v;
}

// Appends to a vector.
class writer {
public:
    explicit writer(std::vector<std::byte>& out) noexcept : out_(out) {}

    template <class UInt>
    void put(UInt v) {
        const auto at = out_.size();
        out_.resize(at + sizeof(UInt));
        store_be(out_.data() + at, v);
    }
    void put_bytes(std::span<const std::byte> b) { out_.insert(out_.end(), b.begin(), b.end()); }

private:
    std::vector<std::byte>& out_;
};

// Reads from a span; every read checks the remaining size first and fails (returns false) instead
// of reading past the end.
class reader {
public:
    explicit reader(std::span<const std::byte> in) noexcept : in_(in) {}

    std::size_t remaining() const noexcept { return in_.size() - pos_; }

    template <class UInt>
    bool get(UInt& v) noexcept {
        if (remaining() < sizeof(UInt)) return false;
        v = load_be<UInt>(in_.data() + pos_);
        pos_ += sizeof(UInt);
        return true;
    }
    bool get_bytes(std::span<std::byte> out) noexcept {
        if (remaining() < out.size()) return false;
        if (!out.empty()) std::memcpy(out.data(), in_.data() + pos_, out.size());
        pos_ += out.size();
        return true;
    }
    std::span<const std::byte> take(std::size_t n) noexcept {
        auto s = in_.subspan(pos_, n);
        pos_ += n;
        return s;
    }

private:
    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
};

}  // namespace pixtream::wire::detail
