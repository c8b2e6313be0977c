// pixtream-tracker: the HTTP/JSON tracker (docs/architecture.md, "Tracker").
#include "pixtream/net/net.hpp"
#include "pixtream/tracker/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace pixtream;

int main(int argc, char** argv) {
    po::options_description opts(
        "Usage: pixtream-tracker [options]\n\n"
        "Tracks which peers watch which channel. Sources and peers announce themselves with\n"
        "GET /announce and get a random subset of the channel's other peers back.\n"
        "Endpoints: /announce, /channels (JSON), /stats (JSON), /metrics (Prometheus text).\n\n"
        "Options");
    std::uint16_t port = 8080;
    double interval = 10;
    std::string bind = "0.0.0.0";
    std::size_t max_channels = 1024;
    std::size_t max_peers = 10000;
    std::size_t max_numwant = 200;
    std::size_t max_connections = 4096;
    double read_timeout = 10;
    std::string log_level = "info";
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("port,p", po::value(&port)->default_value(port), "TCP port to listen on (0: any free port, printed at start)")
        ("interval,i", po::value(&interval)->default_value(interval),
         "seconds between a peer's announces; silent peers are dropped after 2*interval+5 s")
        ("bind", po::value(&bind)->default_value(bind), "address to listen on (IPv4 or IPv6)")
        ("max-channels", po::value(&max_channels)->default_value(max_channels), "most channels held at once")
        ("max-peers-per-channel", po::value(&max_peers)->default_value(max_peers), "most peers in one channel")
        ("max-numwant", po::value(&max_numwant)->default_value(max_numwant), "most peers returned by one announce")
        ("max-connections", po::value(&max_connections)->default_value(max_connections),
         "most HTTP connections open at once; more are closed on accept")
        ("read-timeout", po::value(&read_timeout)->default_value(read_timeout),
         "seconds a client has to send a whole request (else 408)")
        ("log-level", po::value(&log_level)->default_value(log_level), "trace, debug, info, warn, error or off");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "pixtream-tracker: " << e.what() << "\nTry 'pixtream-tracker --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << opts << '\n';
        return 0;
    }
    auto fail_usage = [](const std::string& msg) {
        std::cerr << "pixtream-tracker: " << msg << "\nTry 'pixtream-tracker --help'.\n";
        return 2;
    };
    if (!(interval >= 0.1 && interval <= 3600)) return fail_usage("--interval must be between 0.1 and 3600 seconds");
    if (!(read_timeout >= 0.1 && read_timeout <= 600)) return fail_usage("--read-timeout must be between 0.1 and 600 seconds");
    if (max_channels == 0 || max_peers == 0 || max_connections == 0) return fail_usage("limits must be at least 1");
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") return fail_usage("unknown --log-level '" + log_level + "'");
    spdlog::set_level(level);

    boost::system::error_code ec;
    const auto address = asio::ip::make_address(bind, ec);
    if (ec) return fail_usage("--bind '" + bind + "' is not an IP address");

    asio::io_context io(1);
    tracker::registry_config rcfg;
    rcfg.interval = core::from_seconds(interval);
    rcfg.max_channels = max_channels;
    rcfg.max_peers_per_channel = max_peers;
    rcfg.max_numwant = max_numwant;
    rcfg.seed = std::random_device{}();
    tracker::server_config scfg;
    scfg.read_timeout = core::from_seconds(read_timeout);
    scfg.max_connections = max_connections;

    std::shared_ptr<tracker::server> srv;
    const asio::ip::tcp::endpoint at(address, port);
    try {
        srv = std::make_shared<tracker::server>(io.get_executor(), at, rcfg, scfg);
    } catch (const boost::system::system_error& e) {
        std::cerr << fmt::format("pixtream-tracker: cannot listen on {}:{}: {}\n", bind, port, e.code().message());
        return 1;
    }
    const auto ep = srv->local_endpoint();
    std::cout << fmt::format("pixtream-tracker listening on http://{}:{} (interval {} s)", ep.address().to_string(),
                             ep.port(), interval)
              << std::endl;

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& sec, int sig) {
        if (sec) return;
        spdlog::info("signal {}: shutting down", sig);
        srv->stop();
        io.stop();
    });
    int status = 0;
    asio::co_spawn(io, srv->run(), net::log_errors("tracker", [&](const std::exception&) {
                       status = 1;
                       io.stop();
                   }));
    io.run();
    return status;
}
