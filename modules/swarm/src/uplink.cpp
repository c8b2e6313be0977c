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
    push_max(all_, {now, rate}, cfg_.window);
    if (busy_throughout_) {
        push_max(busy_, {now, rate}, cfg_.window);
        last_busy_at_ = now;
    }
    interval_start_ = now;
    delivered_start_ = delivered;
    busy_throughout_ = backlogged;
}

void uplink_estimator::push_max(std::deque<measurement>& q, measurement m, core::duration window) {
    // Monotonic max queue: a new rate evicts every smaller one before it.
    while (!q.empty() && q.back().rate <= m.rate) q.pop_back();
    q.push_back(m);
    while (!q.empty() && m.at - q.front().at > window) q.pop_front();
}

std::optional<double> uplink_estimator::front_in_window(const std::deque<measurement>& q, core::time_point now,
                                                        core::duration window) {
    for (const auto& m : q) {
        if (now - m.at <= window) return m.rate;  // the first one in the window is its largest
    }
    return std::nullopt;
}

std::optional<double> uplink_estimator::capacity(core::time_point now) const {
    if (!last_busy_rate_) return std::nullopt;
    double best = front_in_window(busy_, now, cfg_.window).value_or(*last_busy_rate_);
    best = std::max(best, lower_bound(now));
    if (cfg_.max_rate > 0) best = std::min(best, cfg_.max_rate);
    if (best <= 0) return std::nullopt;  // nothing moved: no measurement
    return best;
}

double uplink_estimator::lower_bound(core::time_point now) const {
    return front_in_window(all_, now, cfg_.window).value_or(0.0);
}

bool uplink_estimator::saturated_recently(core::time_point now) const {
    return last_busy_at_ && now - *last_busy_at_ <= cfg_.window;
}

double upload_policy::drain_rate(core::time_point now) const {
    const auto& cfg = estimator_.config();
    const auto est = estimator_.capacity(now);
    double r = est ? *est : std::max(estimator_.lower_bound(now), cfg.assumed_rate);
    if (cfg.max_rate > 0) r = std::min(r, cfg.max_rate);
    return std::max(r, 1.0);
}

double upload_policy::backlog_seconds(double waiting_bytes, core::time_point now) const {
    return std::max(0.0, waiting_bytes) / drain_rate(now);
}

bool upload_policy::should_reject(double waiting_bytes, core::time_point now) const {
    return backlog_seconds(waiting_bytes, now) > core::to_seconds(estimator_.config().max_backlog);
}

double upload_policy::kernel_budget(core::duration rtt, core::time_point now) const {
    const auto& cfg = estimator_.config();
    const double horizon = core::to_seconds(std::max(rtt, core::duration::zero()) + cfg.kernel_margin);
    return std::max(static_cast<double>(cfg.kernel_min_bytes), drain_rate(now) * cfg.probe_gain * horizon);
}

double upload_policy::pacing_rate(core::time_point now) const {
    const auto& cfg = estimator_.config();
    const auto est = estimator_.capacity(now);
    const double c = cfg.max_rate;
    if (!est || !estimator_.saturated_recently(now)) return c;
    if (c > 0 && *est >= c) return c;  // the user's cap is the limit, not the link: no queue to drain there
    // Probe one interval in probe_every, counted on the steady clock.
    const std::int64_t slot = static_cast<std::int64_t>(now.time_since_epoch() / cfg.interval);
    const bool probing = cfg.probe_every > 0 && slot % static_cast<std::int64_t>(cfg.probe_every) == 0;
    const double r = *est * (probing ? cfg.probe_gain : cfg.cruise_gain);
    return c > 0 ? std::min(r, c) : r;
}

}  // namespace pixtream::swarm
