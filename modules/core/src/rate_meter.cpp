#include "pixtream/core/rate_meter.hpp"

#include <algorithm>
#include <numeric>

namespace pixtream::core {

rate_meter::rate_meter(duration bucket_width, std::size_t buckets)
    : width_(std::max(bucket_width, duration{1})), buckets_(std::max<std::size_t>(buckets, 1), 0) {}

void rate_meter::roll(time_point now) noexcept {
    const std::int64_t idx = now.time_since_epoch() / width_;
    if (head_ < 0) {
        head_ = idx;
        first_ = idx;
        return;
    }
    if (idx <= head_) return;  // same bucket, or time went backwards: keep adding to the newest
    const auto n = static_cast<std::int64_t>(buckets_.size());
    for (std::int64_t i = head_ + 1; i <= std::min(idx, head_ + n); ++i) buckets_[static_cast<std::size_t>(i % n)] = 0;
    head_ = idx;
}

void rate_meter::add(std::uint64_t bytes, time_point now) noexcept {
    roll(now);
    const auto n = static_cast<std::int64_t>(buckets_.size());
    buckets_[static_cast<std::size_t>(head_ % n)] += bytes;
    total_ += bytes;
}

double rate_meter::rate(time_point now) noexcept {
    if (head_ < 0) return 0.0;
    roll(now);
    const auto n = static_cast<std::int64_t>(buckets_.size());
    const std::uint64_t sum = std::accumulate(buckets_.begin(), buckets_.end(), std::uint64_t{0});
    // The window spans the full old buckets plus the elapsed part of the newest one.
    const duration into_head = now.time_since_epoch() - head_ * width_;
    const std::int64_t full = std::min<std::int64_t>(n - 1, head_ - first_);
    const duration span = full * width_ + std::clamp(into_head, duration{0}, width_);
    const double secs = to_seconds(std::max(span, width_));
    return static_cast<double>(sum) / secs;
}

token_bucket::token_bucket(double rate_per_s, double burst, time_point now) noexcept
    : rate_(std::max(rate_per_s, 0.0)), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

void token_bucket::refill(time_point now) noexcept {
    if (now <= last_) return;
    tokens_ = std::min(burst_, tokens_ + rate_ * to_seconds(now - last_));
    last_ = now;
}

double token_bucket::available(time_point now) noexcept {
    if (unlimited()) return burst_;
    refill(now);
    return tokens_;
}

bool token_bucket::try_consume(double n, time_point now) noexcept {
    if (unlimited()) return true;
    refill(now);
    if (tokens_ < n) return false;
    tokens_ -= n;
    return true;
}

duration token_bucket::time_until(double n, time_point now) noexcept {
    if (unlimited()) return duration{0};
    refill(now);
    if (tokens_ >= n) return duration{0};
    return from_seconds((n - tokens_) / rate_);
}

duration token_bucket::reserve(double n, time_point now) noexcept {
    if (unlimited()) return duration{0};
    refill(now);
    tokens_ -= n;
    if (tokens_ >= 0) return duration{0};
    return from_seconds(-tokens_ / rate_);
}

void token_bucket::refund(double n, time_point now) noexcept {
    if (unlimited()) return;
    refill(now);
    tokens_ = std::min(burst_, tokens_ + std::max(n, 0.0));
}

void token_bucket::set_rate(double rate_per_s, double burst, time_point now) noexcept {
    refill(now);
    rate_ = std::max(rate_per_s, 0.0);
    burst_ = std::max(burst, 1.0);
    tokens_ = std::min(tokens_, burst_);
}

}  // namespace pixtream::core
