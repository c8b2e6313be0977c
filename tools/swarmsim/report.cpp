#include "report.hpp"

#include <boost/json.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace pixtream::swarmsim {

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

boost::json::object stats3(const std::vector<double>& v) {
    return boost::json::object{{"p50", quantile(v, 0.5)}, {"p95", quantile(v, 0.95)},
                               {"max", v.empty() ? 0.0 : *std::max_element(v.begin(), v.end())}};
}

namespace {
bool stderr_is_tty() {
    static const bool tty = ::isatty(2) != 0;
    return tty;
}
}  // namespace

void print_progress(const options& opt, const series_point& p, int running, double source_upload, bool log_line) {
    // On a terminal the progress line rewrites itself; in a log, only the lines the caller picks.
    const bool tty = stderr_is_tty();
    if (opt.quiet || !(tty || log_line)) return;
    std::cerr << fmt::format("{}swarmsim t={:5.1f}s peers={:4d} playing={:4d} continuity={:.4f} lag_p50={:.2f}s "
                             "source_upload={:.2f}x   {}",
                             tty ? "\r" : "", p.t, running, p.playing, p.continuity_mean, p.lag_p50, source_upload,
                             tty ? "" : "\n")
              << std::flush;
}

void end_progress(const options& opt) {
    if (!opt.quiet && stderr_is_tty()) std::cerr << '\n';
}

void print_table(const options& opt, const boost::json::object& r) {
    auto num = [&](const boost::json::value& v) { return v.to_number<double>(); };
    const auto& c = r.at("continuity").as_object();
    const auto& st = r.at("startup_s").as_object();
    const auto& lag = r.at("lag_s").as_object();
    std::cout << fmt::format(
        "\n  swarm of {} peers, {:.0f} s, stream {:.0f} kbit/s, chunk {:.2f} s\n"
        "  {:<22} {:>10} {:>10} {:>10}\n"
        "  {:<22} {:>10.4f} {:>10} {:>10.4f}\n"
        "  {:<22} {:>10.2f} {:>10.2f} {:>10.2f}\n"
        "  {:<22} {:>10.2f} {:>10.2f} {:>10.2f}\n"
        "  {:<22} {:>10.3f}\n  {:<22} {:>10.4f}\n  {:<22} {:>10}\n  {:<22} {:>10.2f}\n  {:<22} {:>10.0f}\n",
        opt.peers, opt.duration, opt.rate_bps / 1000, opt.chunk_seconds, "metric", "mean/p50", "p95", "min/max",
        "continuity", num(c.at("mean")), "", num(c.at("min")), "startup_s", num(st.at("p50")), num(st.at("p95")),
        num(st.at("max")), "lag_s", num(lag.at("p50")), num(lag.at("p95")), num(lag.at("max")), "source_upload_ratio",
        num(r.at("source_upload_ratio")), "overhead_ratio", num(r.at("overhead_ratio")), "identical",
        r.at("identical").as_bool() ? "yes" : "NO", "lag_bound_s", num(r.at("lag_bound_s")), "capacity_bps",
        num(r.at("capacity_bps")));
    // In-process mode: what the nodes really uploaded and the players really got in the steady part.
    if (const auto* m = r.if_contains("measured"); m && m->is_object()) {
        const auto& mo = m->as_object();
        std::cout << fmt::format("  {:<22} {:>10.3f}\n  {:<22} {:>10.3f}\n  {:<22} {:>10.3f} {:>10} {:>10.3f}\n",
                                 "measured rate/capacity", num(mo.at("rate_over_capacity")), "upload utilisation",
                                 num(mo.at("upload_utilisation")), "peer upload / cap", num(mo.at("peer_upload_over_cap").at("mean")),
                                 "", num(mo.at("peer_upload_over_cap").at("max")));
    }
}

void write_plot(const std::string& dir, const std::vector<series_point>& series) {
    std::filesystem::create_directories(dir);
    const auto data = std::filesystem::path(dir) / "series.csv";
    std::ofstream csv(data);
    csv << "t_s,lag_p50_s,continuity_mean,upload_per_peer_bps,playing\n";
    for (const auto& s : series) csv << fmt::format("{:.2f},{:.3f},{:.5f},{:.0f},{}\n", s.t, s.lag_p50, s.continuity_mean, s.upload_per_peer_bps, s.playing);
    csv.close();
    const auto script = std::filesystem::path(dir) / "plot.gp";
    std::ofstream gp(script);
    gp << "set datafile separator ','\nset terminal pngcairo size 900,900\nset output '" << (std::filesystem::path(dir) / "swarm.png").string()
       << "'\nset multiplot layout 3,1\nset xlabel 't (s)'\n"
          "set ylabel 'lag p50 (s)'\nplot '" << data.string() << "' using 1:2 skip 1 with lines title 'lag p50'\n"
          "set ylabel 'continuity'\nset yrange [0.9:1.001]\nplot '" << data.string() << "' using 1:3 skip 1 with lines title 'mean continuity'\n"
          "set yrange [*:*]\nset ylabel 'upload per peer (bit/s)'\nplot '" << data.string() << "' using 1:4 skip 1 with lines title 'upload per peer'\n"
          "unset multiplot\n";
    gp.close();
    if (std::system(("gnuplot " + script.string() + " 2>/dev/null").c_str()) != 0) {
        std::cerr << "swarmsim: gnuplot not available or failed; the data is in " << data.string() << '\n';
    }
}

}  // namespace pixtream::swarmsim
