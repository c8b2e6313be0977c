#pragma once
// swarmsim --processes: the whole swarm as real processes on 127.0.0.1 (pixtream-tracker,
// pixtream-source fed by swarmsim through its stdin, N pixtream-peer), each peer's output read by a
// raw-TCP player in swarmsim, metrics from the peers' GET /stats. Same report as the in-process mode.
#include "options.hpp"
#include "report.hpp"

#include <boost/json/object.hpp>

#include <vector>

namespace pixtream::swarmsim {

// The most peers --processes runs at once (one process each).
inline constexpr int max_process_peers = 200;

struct process_run {
    int status = 0;  // 0; 1: a failure (described on stderr); 128 + N: interrupted by signal N
    boost::json::object report;
    std::vector<series_point> series;
};

// Runs the swarm; every child process has been stopped and reaped when it returns.
process_run run_processes(const options& opt);

}  // namespace pixtream::swarmsim
