#pragma once
// What both swarmsim modes print and write: the metrics table, the progress line, and the time series
// for --plot (CSV plus a gnuplot script and PNG).
#include "options.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace pixtream::swarmsim {

// The q-quantile of `v` (nearest rank); 0 for an empty vector.
double quantile(std::vector<double> v, double q);

// {"p50", "p95", "max"} of `v`.
boost::json::object stats3(const std::vector<double>& v);

struct series_point {
    double t;
    double lag_p50;
    double continuity_mean;
    double upload_per_peer_bps;
    int playing;
};

// Prints the progress line to stderr: on a terminal it rewrites itself at every call; otherwise it is
// printed only when `log_line` is set (the caller picks one sample in a few seconds).
void print_progress(const options& opt, const series_point& p, int running, double source_upload, bool log_line);
// Ends the progress line (on a terminal).
void end_progress(const options& opt);

// The metrics table on stdout, from a report.
void print_table(const options& opt, const boost::json::object& r);

// series.csv, plot.gp and (with gnuplot) swarm.png in `dir`.
void write_plot(const std::string& dir, const std::vector<series_point>& series);

}  // namespace pixtream::swarmsim
