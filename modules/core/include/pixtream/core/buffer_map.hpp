#pragma once
// A sliding window of chunk availability: `capacity()` bits starting at `base()`.
// Backed by a ring of 64-bit words, so sliding forward costs only the bits it drops.
#include "pixtream/core/ids.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace pixtream::core {

class buffer_map {
public:
    // Largest window any buffer map may have (also the protocol's limit, see docs/protocol.md).
    static constexpr std::size_t max_capacity = 4096;

    // `capacity` is rounded up to a multiple of 64 and clamped to [64, max_capacity].
    explicit buffer_map(std::size_t capacity = 512, chunk_id base = chunk_id{0});

    chunk_id base() const noexcept { return base_; }
    // One past the last id the window can hold.
    chunk_id end() const noexcept { return base_ + capacity_; }
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }

    bool in_window(chunk_id id) const noexcept { return id >= base_ && id < end(); }
    // False for ids outside the window.
    bool test(chunk_id id) const noexcept;
    // Marks `id` present. Returns false (and changes nothing) when `id` is outside the window.
    bool set(chunk_id id) noexcept;
    void reset(chunk_id id) noexcept;
    void clear() noexcept;

    // Slides the window so that it starts at `new_base`, dropping every id below it.
    // A `new_base` at or below the current base changes nothing: windows never slide back.
    void advance_to(chunk_id new_base) noexcept;
    // Slides forward just enough that `id` fits (no-op if it already does or is below base).
    void advance_to_fit(chunk_id id) noexcept;

    // First present / missing id in [from, end()), if any.
    std::optional<chunk_id> next_set(chunk_id from) const noexcept;
    std::optional<chunk_id> next_missing(chunk_id from) const noexcept;
    // Highest present id, if any.
    std::optional<chunk_id> last_set() const noexcept;

    // Calls f(chunk_id) for every present id in ascending order.
    template <class F>
    void for_each_set(F&& f) const {
        for (auto id = next_set(base_); id; id = next_set(id->next())) f(*id);
    }

    friend bool operator==(const buffer_map& a, const buffer_map& b) noexcept;

private:
    std::size_t bit_index(chunk_id id) const noexcept { return static_cast<std::size_t>(id.value() % capacity_); }
    std::optional<chunk_id> scan(chunk_id from, bool want_set) const noexcept;

    std::vector<std::uint64_t> words_;
    std::size_t capacity_;
    chunk_id base_;
    std::size_t count_ = 0;
};

}  // namespace pixtream::core
