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
// estimate is the largest rate over the last `window` (a max filter, as BBR keeps its bottleneck
// bandwidth), never above `max_rate` (the user's --upload-limit, if any), and the newest busy rate
// is remembered beyond the window so that a quiet spell does not forget what the link can do.
//
// `upload_policy` uses the estimate: a REQUEST is refused (REJECT) when the data already waiting to
// go out (application queues, kernel unsent bytes, pacing debt) would take longer than
// `max_backlog` to drain at the estimated rate, so requesters turn to another holder at once
// instead of queueing behind everyone else; and it gives the pacing rate, `pacing_gain` times the
// estimate (above 1, so that the estimate can grow when the link can do more), with bursts bounded
// by `burst_bytes`.
#include "pixtream/core/time.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace pixtream::swarm {

struct uplink_config {
    core::duration interval = core::milliseconds(500);  // one delivery-rate measurement
    core::duration window = core::seconds(10);          // the max filter's memory
    double max_rate = 0;                                 // bytes per second; 0: no cap
    // Before any measurement: the rate assumed for the backlog bound (125 kB/s = 1 Mbit/s).
    double assumed_rate = 125'000;
    core::duration max_backlog = core::milliseconds(500);
    double pacing_gain = 1.25;
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

    // Bytes per second the uplink drains; nullopt before the first interval completed.
    std::optional<double> capacity(core::time_point now) const;
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
    std::deque<measurement> window_;  // rates over the window, decreasing (a monotonic max queue)
    std::optional<double> last_busy_rate_;
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

private:
    uplink_estimator estimator_;
};

}  // namespace pixtream::swarm
