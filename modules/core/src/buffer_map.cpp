#include "pixtream/core/buffer_map.hpp"

#include <algorithm>
#include <bit>

namespace pixtream::core {

buffer_map::buffer_map(std::size_t capacity, chunk_id base)
    : capacity_(std::clamp<std::size_t>((capacity + 63) / 64 * 64, 64, max_capacity)), base_(base) {
    words_.assign(capacity_ / 64, 0);
}

bool buffer_map::test(chunk_id id) const noexcept {
    if (!in_window(id)) return false;
    const auto i = bit_index(id);
    return (words_[i / 64] >> (i % 64)) & 1U;
}

bool buffer_map::set(chunk_id id) noexcept {
    if (!in_window(id)) return false;
    const auto i = bit_index(id);
    auto& w = words_[i / 64];
    const std::uint64_t mask = std::uint64_t{1} << (i % 64);
    if ((w & mask) == 0) {
        w |= mask;
        ++count_;
    }
    return true;
}

void buffer_map::reset(chunk_id id) noexcept {
    if (!in_window(id)) return;
    const auto i = bit_index(id);
    auto& w = words_[i / 64];
    const std::uint64_t mask = std::uint64_t{1} << (i % 64);
    if ((w & mask) != 0) {
        w &= ~mask;
        --count_;
    }
}

void buffer_map::clear() noexcept {
    std::fill(words_.begin(), words_.end(), 0);
    count_ = 0;
}

void buffer_map::advance_to(chunk_id new_base) noexcept {
    if (new_base <= base_) return;
    if (static_cast<std::uint64_t>(distance(base_, new_base)) >= capacity_) {
        clear();
        base_ = new_base;
        return;
    }
    // Drop the ids [base_, new_base) one word-run at a time.
    chunk_id id = base_;
    while (id < new_base) {
        const auto i = bit_index(id);
        const auto bit = i % 64;
        const auto run = std::min<std::uint64_t>(64 - bit, static_cast<std::uint64_t>(distance(id, new_base)));
        const std::uint64_t mask = (run == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << run) - 1)) << bit;
        auto& w = words_[i / 64];
        count_ -= static_cast<std::size_t>(std::popcount(w & mask));
        w &= ~mask;
        id = id + run;
    }
    base_ = new_base;
}

void buffer_map::advance_to_fit(chunk_id id) noexcept {
    if (id >= end()) advance_to(id - (capacity_ - 1));
}

std::optional<chunk_id> buffer_map::scan(chunk_id from, bool want_set) const noexcept {
    if (from < base_) from = base_;
    chunk_id id = from;
    const chunk_id stop = end();
    while (id < stop) {
        const auto i = bit_index(id);
        const auto bit = i % 64;
        const auto run = std::min<std::uint64_t>(64 - bit, static_cast<std::uint64_t>(distance(id, stop)));
        std::uint64_t w = want_set ? words_[i / 64] : ~words_[i / 64];
        w >>= bit;
        if (run < 64) w &= (std::uint64_t{1} << run) - 1;
        if (w != 0) return id + static_cast<std::uint64_t>(std::countr_zero(w));
        id = id + run;
    }
    return std::nullopt;
}

std::optional<chunk_id> buffer_map::next_set(chunk_id from) const noexcept { return scan(from, true); }

std::optional<chunk_id> buffer_map::next_missing(chunk_id from) const noexcept { return scan(from, false); }

std::optional<chunk_id> buffer_map::last_set() const noexcept {
    if (count_ == 0) return std::nullopt;
    // Walk back from the end, a word-run at a time.
    chunk_id id = end();
    while (id > base_) {
        const chunk_id last = id - 1;
        const auto i = bit_index(last);
        const auto bit = i % 64;  // highest bit of this run
        const auto run = std::min<std::uint64_t>(bit + 1, static_cast<std::uint64_t>(distance(base_, id)));
        std::uint64_t w = words_[i / 64];
        if (bit < 63) w &= (std::uint64_t{1} << (bit + 1)) - 1;
        w >>= (bit + 1 - run);  // keep only the run's bits, lowest at 0
        if (w != 0) return last - (run - static_cast<std::uint64_t>(std::bit_width(w)));
        id = id - run;
    }
    return std::nullopt;
}

bool operator==(const buffer_map& a, const buffer_map& b) noexcept {
    if (a.base_ != b.base_ || a.capacity_ != b.capacity_ || a.count_ != b.count_) return false;
    return a.words_ == b.words_;
}

}  // namespace pixtream::core
