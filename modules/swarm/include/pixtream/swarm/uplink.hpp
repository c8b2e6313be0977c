#pragma once
// Uplink discovery and the upload policy built on it (pure: time is passed in, no sockets).
//
// Nobody can tell a node its upload capacity: the link's real bottleneck is somewhere upstream, and it
// changes. So the node measures what its uplink actually drains: the shell reports, every few tens of
// milliseconds, how many bytes all its connections have had acknowledged so far (bytes written minus
// what the kernel still holds, SIOCOUTQ) and whether data was waiting to go out at that moment (queued
// in the application, or unsent in a kernel queue, SIOCOUTQNSD). With TCP_NOTSENT_LOWAT the kernel
// holds only a little unsent data, so the rest waits in the application where it can be prioritised,
// cancelled or refused.
//
// `uplink_estimator` turns those samples into delivery rates over intervals of `interval`. An interval
// during which data was waiting all along measured the capacity (what the uplink drains when it has
// work); an interval with idle moments only shows that the capacity is at least the rate seen. The
// capacity is the largest busy rate over the last `window` (a max filter, as BBR keeps its bottleneck
// bandwidth), or the newest busy rate if the window has none (a quiet spell does not forget what the
// link can do), raised to the largest rate of any kind in the window; never above `max_rate` (the
// user's --upload-limit, if any). Until a busy interval was seen there is only the lower bound.
//
// `upload_policy` uses the estimate: a REQUEST is refused (REJECT) when the data already waiting to
// go out (application queues, kernel unsent bytes, pacing debt) would take longer than
// `max_backlog` to drain at the capacity (unknown: the larger of the lower bound and
// `assumed_rate`), so requesters turn to another holder at once instead of queueing behind everyone
// else. It paces only while the uplink is known to be the limit (a busy interval within the window):
// at `cruise_gain` (0.9) times the capacity, so that the link's queue drains, except that one
// interval in every `probe_every` is paced at `probe_gain` times it (as BBR probes), so that the
// estimate grows when the link can do more without keeping the link's queue full (while the user's
// cap is the limit, at the cap); bursts are bounded by `burst_bytes`. Pacing at a mere lower bound
// would throttle a node to whatever it happened to send before. And it bounds what the kernel holds for all connections
// (kernel_budget): enough to keep the writing connection's pipe full, not more.
#include "pixtream/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace pixtream::swarm {

struct uplink_config {
    // One delivery-rate measurement. Not shorter: ACKs come in bursts (after a loss is repaired a round
    // trip of data is acknowledged at once), and 500 ms intervals measured peers at 1.4-1.7 x their link.
    core::duration interval = core::seconds(1);
    core::duration window = core::seconds(10);          // the max filter's memory
    double max_rate = 0;                                 // bytes per second; 0: no cap
    // Before any measurement: the rate assumed for the backlog bound (125 kB/s = 1 Mbit/s).
    double assumed_rate = 125'000;
    core::duration max_backlog = core::milliseconds(500);
    double probe_gain = 1.25;
    // Between probes the pacing is a little below the estimate, so that what a probe (or a burst) left
    // in the link's queue drains: a full uplink queue delays every fresh chunk behind it, and the ACKs
    // of the node's own downloads too. WAN lab, scenario a: 0.945/0.978 continuity (seeds 2/1) at 1.0,
    // 0.959/0.986 at 0.9, 0.956 (seed 2) at 0.8.
    double cruise_gain = 0.9;
    // Bytes the kernel may hold for all connections together (sent but unacknowledged, plus unsent):
    // the drain rate x (the writing connection's RTT + kernel_margin), at least kernel_min_bytes.
    // Beyond it the data waits in the node: in flight it would only queue in the uplink (or be
    // dropped there and sent again) where nothing can reorder it.
    core::duration kernel_margin = core::milliseconds(100);
    std::size_t kernel_min_bytes = 24 * 1024;
    unsigned probe_every = 8;
    std::size_t burst_bytes = 8 * 1024;  // a few packets
};

struct uplink_sample_stats {
    std::uint64_t intervals = 0;       // delivery-rate intervals completed
    std::uint64_t busy_intervals = 0;  // ... of which data was waiting all along
};

class uplink_estimator {
public:
    explicit uplink_estimator(uplink_config cfg = {}) : cfg_(cfg) {}

    // `delivered`: bytes acknowledged so far over all connections (monotonic; a decrease, e.g. when
    // a connection with unacknowledged bytes closed, is taken as no progress). `backlogged`: data was
    // waiting to go out at this moment.
    void sample(std::uint64_t delivered, bool backlogged, core::time_point now);

    // Bytes per second the uplink drains; nullopt before the first busy interval.
    std::optional<double> capacity(core::time_point now) const;
    // The largest rate of any interval in the window: the capacity is at least this (0 if none).
    double lower_bound(core::time_point now) const;
    // A busy interval completed within the window: the uplink has recently been the limit.
    bool saturated_recently(core::time_point now) const;
    // The newest interval's delivery rate (0 before one completed).
    double delivery_rate() const noexcept { return last_rate_; }
    const uplink_sample_stats& stats() const noexcept { return stats_; }
    const uplink_config& config() const noexcept { return cfg_; }

private:
    struct measurement {
        core::time_point at;
        double rate;
    };

    uplink_config cfg_;
    bool started_ = false;
    core::time_point interval_start_{};
    std::uint64_t delivered_start_ = 0;
    std::uint64_t delivered_last_ = 0;
    bool busy_throughout_ = true;
    static void push_max(std::deque<measurement>& q, measurement m, core::duration window);
    static std::optional<double> front_in_window(const std::deque<measurement>& q, core::time_point now,
                                                 core::duration window);

    std::deque<measurement> all_;   // every interval's rate over the window, decreasing (a max queue)
    std::deque<measurement> busy_;  // busy intervals' rates, likewise
    std::optional<double> last_busy_rate_;
    std::optional<core::time_point> last_busy_at_;
    double last_rate_ = 0;
    uplink_sample_stats stats_;
};

class upload_policy {
public:
    explicit upload_policy(uplink_config cfg = {}) : estimator_(cfg) {}

    uplink_estimator& estimator() noexcept { return estimator_; }
    const uplink_estimator& estimator() const noexcept { return estimator_; }

    // The rate the backlog bound uses: the estimate, else the assumed rate; capped by max_rate.
    double drain_rate(core::time_point now) const;
    // Seconds the waiting bytes take to drain.
    double backlog_seconds(double waiting_bytes, core::time_point now) const;
    // Refuse a request that would queue behind more than max_backlog.
    bool should_reject(double waiting_bytes, core::time_point now) const;
    // Bytes per second to pace at (never above max_rate); 0: do not pace (nothing measured yet and no
    // cap: the kernel's own pacing and flow control are all there is).
    double pacing_rate(core::time_point now) const;
    std::size_t burst_bytes() const noexcept { return estimator_.config().burst_bytes; }
    // How many bytes the kernel queues may hold in all, for a write on a connection with this RTT.
    double kernel_budget(core::duration rtt, core::time_point now) const;
private:
    uplink_estimator estimator_;
};

}  // namespace pixtream::swarm
