#pragma once
// swarmsim's settings, shared by the in-process and the --processes modes. Rates and caps are in bits
// per second, times in seconds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pixtream::swarmsim {

struct options {
    int peers = 20;
    double duration = 30;
    double rate_bps = 500'000;
    double cap_min_bps = 2'000'000;
    double cap_max_bps = 2'000'000;
    double source_cap_bps = 2'000'000;
    double churn = 0;
    double buffer = 3;
    double upload_backlog = 0.5;
    double chunk_seconds = 0.5;
    double join_window = 5;
    std::size_t max_peers = 12;
    std::size_t target_peers = 6;
    std::uint64_t seed = 1;
    std::string report;
    std::string plot_dir;
    bool quiet = false;
    bool per_peer = false;
    // --processes: run pixtream-tracker, pixtream-source and pixtream-peer as child processes.
    bool processes = false;
    std::string tracker_exe;
    std::string source_exe;
    std::string peer_exe;
    // --processes: feed the source this file (looped) at --rate instead of pseudo-random bytes.
    std::vector<std::byte> input;
};

}  // namespace pixtream::swarmsim
