#pragma once
// Bytes-per-second over a sliding window of fixed buckets. Time is passed in.
#include "pixtream/core/time.hpp"

#include <cstdint>
#include <vector>

namespace pixtream::core {

class rate_meter {
public:
    // A window of `buckets` buckets of `bucket_width` each (default: 5 s in 250 ms steps).
    explicit rate_meter(duration bucket_width = milliseconds(250), std::size_t buckets = 20);

    void add(std::uint64_t bytes, time_point now) noexcept;
    // Bytes per second over the window (over the time since the first sample while younger than it).
    double rate(time_point now) noexcept;
    std::uint64_t total() const noexcept { return total_; }

private:
    void roll(time_point now) noexcept;

    duration width_;
    std::vector<std::uint64_t> buckets_;
    std::uint64_t total_ = 0;
    std::int64_t head_ = -1;  // absolute index of the newest bucket; -1 before the first sample
    std::int64_t first_ = 0;  // absolute index of the first sample's bucket
};

// Token bucket for upload limits. `rate` tokens (bytes) per second accrue up to `burst`.
// A rate of 0 means unlimited. `reserve` may borrow: the balance goes negative and the caller
// waits the returned time, so a send larger than the burst still goes out at the right pace.
class token_bucket {
public:
    token_bucket(double rate_per_s, double burst, time_point now) noexcept;

    bool unlimited() const noexcept { return rate_ <= 0; }
    double rate() const noexcept { return rate_; }
    double burst() const noexcept { return burst_; }

    // Tokens available now (may be negative after a borrowing `reserve`).
    double available(time_point now) noexcept;
    // Takes n tokens if they are all there; otherwise takes none.
    bool try_consume(double n, time_point now) noexcept;
    // Takes n tokens, borrowing if need be; returns how long to wait before the send may start.
    duration reserve(double n, time_point now) noexcept;
    // Gives back n tokens of a reservation whose send did not happen (never above the burst).
    void refund(double n, time_point now) noexcept;
    // How long until n tokens would be available (zero if they are now).
    duration time_until(double n, time_point now) noexcept;
    void set_rate(double rate_per_s, double burst, time_point now) noexcept;

private:
    void refill(time_point now) noexcept;

    double rate_;
    double burst_;
    double tokens_;
    time_point last_;
};

}  // namespace pixtream::core
