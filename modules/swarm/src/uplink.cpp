#include "pixtream/swarm/uplink.hpp"

#include <algorithm>

namespace pixtream::swarm {

void uplink_estimator::sample(std::uint64_t delivered, bool backlogged, core::time_point now) {
    if (!started_) {
        started_ = true;
        interval_start_ = now;
        delivered_start_ = delivered_last_ = delivered;
        busy_throughout_ = backlogged;
        return;
    }
    // A closed connection takes its unacknowledged bytes out of the sum: count no progress then.
    if (delivered < delivered_last_) {
        delivered_start_ -= std::min(delivered_start_, delivered_last_ - delivered);
    }
    delivered_last_ = delivered;
    busy_throughout_ = busy_throughout_ && backlogged;
    const auto elapsed = now - interval_start_;
    if (elapsed < cfg_.interval) return;
    const double rate = static_cast<double>(delivered - std::min(delivered, delivered_start_)) / core::to_seconds(elapsed);
    last_rate_ = rate;
    ++stats_.intervals;
    if (busy_throughout_) {
        ++stats_.busy_intervals;
        last_busy_rate_ = rate;
    }
    // Monotonic max queue: a new rate evicts every smaller one before it.
    while (!window_.empty() && window_.back().rate <= rate) window_.pop_back();
    window_.push_back({now, rate});
    while (!window_.empty() && now - window_.front().at > cfg_.window) window_.pop_front();
    interval_start_ = now;
    delivered_start_ = delivered;
    busy_throughout_ = backlogged;
}

std::optional<double> uplink_estimator::capacity(core::time_point now) const {
    std::optional<double> best = last_busy_rate_;
    for (const auto& m : window_) {
        if (now - m.at > cfg_.window) continue;
        best = best ? std::max(*best, m.rate) : m.rate;
        break;  // the front is the largest in the window
    }
    if (best && cfg_.max_rate > 0) best = std::min(*best, cfg_.max_rate);
    if (best && *best <= 0) return std::nullopt;  // nothing moved yet: no measurement
    return best;
}

double upload_policy::drain_rate(core::time_point now) const {
    const auto& cfg = estimator_.config();
    double r = estimator_.capacity(now).value_or(cfg.assumed_rate);
    if (cfg.max_rate > 0) r = std::min(r, cfg.max_rate);
    return std::max(r, 1.0);
}

double upload_policy::backlog_seconds(double waiting_bytes, core::time_point now) const {
    return std::max(0.0, waiting_bytes) / drain_rate(now);
}

bool upload_policy::should_reject(double waiting_bytes, core::time_point now) const {
    return backlog_seconds(waiting_bytes, now) > core::to_seconds(estimator_.config().max_backlog);
}

double upload_policy::pacing_rate(core::time_point now) const {
    const auto& cfg = estimator_.config();
    const auto est = estimator_.capacity(now);
    if (!est) return cfg.max_rate;
    const double r = *est * cfg.pacing_gain;
    return cfg.max_rate > 0 ? std::min(r, cfg.max_rate) : r;
}

}  // namespace pixtream::swarm
