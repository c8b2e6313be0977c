// pixtream-source: cuts a live input into signed chunks and feeds the swarm (docs/architecture.md).
#include "pixtream/net/net.hpp"
#include "pixtream/peer/node.hpp"
#include "pixtream/source/broadcaster.hpp"
#include "pixtream/stream/output_server.hpp"
#include "pixtream/tracker/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <random>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace pixtream;

namespace {

int usage_error(const std::string& msg) {
    std::cerr << "pixtream-source: " << msg << "\nTry 'pixtream-source --help'.\n";
    return 2;
}

// A failed part stops the whole program with status 1.
auto log_failure(const std::string& what, int* status, asio::io_context* io) {
    return net::log_errors("source: " + what, [status, io](const std::exception&) {
        *status = 1;
        io->stop();
    });
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description opts(
        "Usage: pixtream-source [options] TRACKER_URL {http|tcp|file|stdin|listen|udp|icecast} SOURCE\n\n"
        "Reads a live media stream, publishes it at real time by its own clock, cuts it into signed\n"
        "chunks aligned to its container (MPEG-TS, Ogg, MP3, ADTS/AAC, else raw bytes), announces the\n"
        "channel to the tracker and feeds the peers.\n"
        "SOURCE: http URL (pulled), tcp HOST:PORT (pulled: we connect), file PATH, stdin -,\n"
        "listen [ADDRESS:]PORT (pushed: a broadcaster connects, e.g. ffmpeg ... -f mpegts tcp://HOST:PORT),\n"
        "udp [ADDRESS:]PORT (pushed MPEG-TS datagrams, e.g. ffmpeg ... udp://HOST:PORT; a multicast\n"
        "ADDRESS is joined), icecast [ADDRESS:]PORT (pushed: an Icecast source client's PUT or SOURCE,\n"
        "e.g. ffmpeg ... icecast://source:PASSWORD@HOST:PORT/MOUNT; any mount and password).\n"
        "A pushed input waits for its broadcaster, and when it drops and comes back, the channel\n"
        "continues.\n\n"
        "Options");
    std::string ip = "0.0.0.0";
    std::uint16_t port = 60000;
    std::uint16_t sport = 30000;
    double rate = 0;
    bool loop = false;
    std::string channel = "pixtream";
    std::string key_file = "pixtream-source.key";
    std::size_t max_peers = 32;
    double upload_limit = 0;
    double upload_budget = 1.3;
    double chunk_seconds = 0.25;
    std::size_t chunk_bytes = 64 * 1024;
    double linger = 10;
    unsigned push_substreams = 0;
    std::string log_level = "info";
    std::vector<std::string> positional;
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("ip,i", po::value(&ip)->default_value(ip), "address to listen on for peers and players")
        ("port,p", po::value(&port)->default_value(port), "TCP port for peer connections (0: any free port)")
        ("sport,s", po::value(&sport)->default_value(sport),
         "TCP port serving the stream to local players (raw TCP or HTTP GET /, GET /stats); 0: any free port")
        ("rate", po::value(&rate)->default_value(rate),
         "raw input only (no MPEG-TS, Ogg, MP3 or ADTS in it): publish it at this many bytes per second, whatever "
         "the input kind (0: as it arrives). Containers are always published at real time by their own clock "
         "(PCR, granule positions, frames), however fast the input comes; for them --rate is ignored with a warning")
        ("loop", po::bool_switch(&loop), "file input: start again at the end, forever")
        ("channel", po::value(&channel)->default_value(channel), "channel name announced to the tracker")
        ("key", po::value(&key_file)->default_value(key_file),
         "file holding the channel's signing key (created if absent); the channel is its public key")
        ("max-peers", po::value(&max_peers)->default_value(max_peers), "most peer connections")
        ("upload-limit", po::value(&upload_limit)->default_value(upload_limit),
         "bytes per second uploaded to peers at most (0: no cap). Not needed: the source measures what its uplink "
         "drains and paces and refuses requests from that; this only caps it further")
        ("upload-budget", po::value(&upload_budget)->default_value(upload_budget),
         "upload at most this many times the stream rate (fresh chunks first, repairs within the rest), so that "
         "the peers carry the swarm; 0: as much as the uplink drains")
        ("chunk-seconds", po::value(&chunk_seconds)->default_value(chunk_seconds), "longest time a chunk spans: shorter chunks cross each hop of the swarm sooner (each peer relays a chunk "
         "only once it has all of it), at a little more per-chunk overhead")
        ("chunk-bytes", po::value(&chunk_bytes)->default_value(chunk_bytes), "largest chunk payload")
        ("linger", po::value(&linger)->default_value(linger),
         "seconds to keep serving after the input ended, so peers get the end of the stream")
        ("push-substreams", po::value(&push_substreams)->default_value(push_substreams),
         "experimental: split the stream into this many substreams (1-32); peers subscribe to one substream "
         "each here and push it on to their own subscribers; 0 (the default): no push trees. The peers must "
         "use the same value (docs/architecture.md)")
        ("log-level", po::value(&log_level)->default_value(log_level), "trace, debug, info, warn, error or off");
    po::options_description hidden;
    hidden.add_options()("args", po::value(&positional));
    // clang-format on
    po::positional_options_description pos;
    pos.add("args", -1);
    po::options_description all;
    all.add(opts).add(hidden);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return usage_error(e.what());
    }
    if (vm.count("help")) {
        std::cout << opts << '\n';
        return 0;
    }
    if (positional.size() != 3 && !(positional.size() == 2 && positional[1] == "stdin"))
        return usage_error("expected TRACKER_URL {http|tcp|file|stdin|listen|udp|icecast} SOURCE");
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") return usage_error("unknown --log-level '" + log_level + "'");
    spdlog::set_level(level);
    if (!(chunk_seconds >= 0.01 && chunk_seconds <= 10)) return usage_error("--chunk-seconds must be between 0.01 and 10");
    if (chunk_bytes < 1024 || chunk_bytes > wire::max_chunk_payload)
        return usage_error(fmt::format("--chunk-bytes must be between 1024 and {}", wire::max_chunk_payload));
    if (rate < 0 || upload_limit < 0 || linger < 0) return usage_error("--rate, --upload-limit and --linger cannot be negative");
    if (!(upload_budget == 0 || (upload_budget >= 1 && upload_budget <= 100)))
        return usage_error("--upload-budget must be 0 or between 1 and 100 (times the stream rate)");
    if (push_substreams > 32) return usage_error("--push-substreams must be between 0 and 32");
    if (channel.empty() || channel.size() > 64) return usage_error("--channel must be 1 to 64 characters");

    std::string error;
    const auto tracker_url = tracker::parse_tracker_url(positional[0], error);
    if (!tracker_url) return usage_error("tracker URL '" + positional[0] + "': " + error);
    auto input = source::parse_input(positional[1], positional.size() > 2 ? positional[2] : "-", error);
    if (!input) return usage_error(error);
    input->loop = loop;
    boost::system::error_code aec;
    const auto address = asio::ip::make_address(ip, aec);
    if (aec) return usage_error("--ip '" + ip + "' is not an IP address");

    bool created = false;
    auto key = source::load_or_create_key(key_file, error, created);
    if (!key) {
        std::cerr << "pixtream-source: " << error << '\n';
        return 1;
    }

    asio::io_context io(1);
    std::random_device rd;
    peer::node_config ncfg;
    ncfg.channel = key->public_key;
    ncfg.self = core::peer_id::random(rd);
    ncfg.is_source = true;
    ncfg.listen = asio::ip::tcp::endpoint(address, port);
    ncfg.max_peers = max_peers;
    ncfg.target_peers = 0;  // the source does not dial out: peers come to it
    ncfg.upload_limit = upload_limit;
    ncfg.source_budget = upload_budget;
    ncfg.push_substreams = push_substreams;
    ncfg.seed = rd();
    std::shared_ptr<peer::node> node;
    std::shared_ptr<stream::output_server> output;
    try {
        node = std::make_shared<peer::node>(io.get_executor(), ncfg);
    } catch (const boost::system::system_error& e) {
        std::cerr << fmt::format("pixtream-source: cannot listen for peers on {}:{}: {}\n", ip, port, e.code().message());
        return 1;
    }
    stream::output_config ocfg;  // Content-Type from the stream's first bytes
    std::shared_ptr<source::broadcaster> caster;
    // GET /stats: the source's side of DESIGN.md's metrics (source_upload_ratio) and its input.
    auto stats_json = [&] {
        const auto s = node->stats();
        boost::json::object j{
            {"chunks_published", s.chunks_published},
            {"bytes_published", s.bytes_published},
            {"neighbours", s.neighbours},
            {"bytes_out", s.wire_bytes_out},
            {"payload_bytes_out", s.payload_bytes_out},
            {"source_upload_ratio",
             s.bytes_published == 0 ? 0.0 : static_cast<double>(s.wire_bytes_out) / static_cast<double>(s.bytes_published)},
            {"upload_bps", s.upload_rate * 8},
            {"uplink", boost::json::object{{"estimate_bps", s.uplink_estimate * 8},
                                           {"pacing_bps", s.uplink_pacing * 8},
                                           {"busy_intervals", s.uplink_busy_intervals},
                                           {"kernel_unsent_bytes", s.kernel_unsent},
                                           {"queued_bytes", s.upload_queued}}},
            {"push_tree", boost::json::object{{"capacity", s.tree_capacity},
                                              {"children", s.tree_children},
                                              {"subscribes", s.tree.subscribes},
                                              {"revocations", s.tree.revocations}}},
            {"push_targets", boost::json::object{{"picks", s.seeds.picks},
                                                 {"explores", s.seeds.explores},
                                                 {"spread", s.seeds.spread},
                                                 {"timeouts", s.seeds.timeouts}}},
            {"rejects_sent", s.rejects_sent},
            {"protocol_errors", s.protocol_errors},
            {"bans", s.bans},
        };
        if (caster) {
            const auto& in = caster->input().stats();
            const auto& cs = caster->stats();
            j["input"] = boost::json::object{{"bytes", in.bytes},
                                             {"connected", in.connected},
                                             {"reconnects", in.reconnects},
                                             {"failures", in.failures},
                                             {"last_error", in.last_error},
                                             {"ended", cs.ended},
                                             {"container", source::name_of(caster->clock().kind())},
                                             {"clock", source::name_of(caster->clock().source())},
                                             {"discontinuities", caster->clock().stats().discontinuities},
                                             {"clock_anchors", cs.clock_anchors},
                                             {"held_s", cs.held_s}};
        }
        return boost::json::serialize(j);
    };
    try {
        output = std::make_shared<stream::output_server>(io.get_executor(), asio::ip::tcp::endpoint(address, sport), ocfg,
                                                         stats_json);
    } catch (const boost::system::system_error& e) {
        std::cerr << fmt::format("pixtream-source: cannot listen for players on {}:{}: {}\n", ip, sport, e.code().message());
        return 1;
    }

    // Chunk ids continue across restarts of the source: they start at the time in 10 ms units.
    const auto first_id = core::chunk_id{static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() / 10)};
    source::broadcaster_config bcfg;
    bcfg.cut.max_bytes = chunk_bytes;
    bcfg.cut.max_duration = core::from_seconds(chunk_seconds);
    bcfg.raw_bytes_per_s = rate;
    caster = std::make_shared<source::broadcaster>(io.get_executor(), *input, bcfg, *key, first_id,
                                                        [&](wire::chunk_ptr c) {
                                                            if (c->is_header()) output->set_header(c);
                                                            output->write(c);
                                                            node->publish(std::move(c));
                                                        });

    if (const auto why = caster->bind_input(); !why.empty()) {
        std::cerr << "pixtream-source: " << why << '\n';
        return 1;
    }

    tracker::client_config tcfg;
    tcfg.urls = {*tracker_url};
    tcfg.params.channel = key->public_key;
    tcfg.params.peer = ncfg.self;
    tcfg.params.port = node->advertised_port();
    tcfg.params.is_source = true;
    tcfg.params.name = channel;
    tcfg.params.numwant = 0;
    tcfg.seed = rd();
    auto announcer = std::make_shared<tracker::client>(io.get_executor(), tcfg, nullptr);

    std::cout << fmt::format("pixtream-source channel {} ('{}'){} peers on {}:{} players on {}:{}",
                             key->public_key.to_hex(), channel, created ? " (new key in " + key_file + ")" : "", ip,
                             node->local_endpoint().port(), ip, output->local_endpoint().port())
              << std::endl;

    int status = 0;
    asio::steady_timer linger_timer(io);
    auto shutdown = [&] {
        caster->stop();
        announcer->stop();
        output->stop();
        node->stop();
        linger_timer.cancel();
    };
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: shutting down", sig);
        shutdown();
    });
    asio::co_spawn(io, node->run(), log_failure("peer node", &status, &io));
    asio::co_spawn(io, output->run(), log_failure("stream output", &status, &io));
    asio::co_spawn(io, announcer->run(), log_failure("tracker client", &status, &io));
    asio::co_spawn(io, caster->run(), [&](std::exception_ptr e) {
        log_failure("input", &status, &io)(e);
        if (e) return;
        // The input is over: keep serving a while so that every peer gets the end of the stream.
        spdlog::info("source: {} chunks published; serving for {} s more", caster->stats().chunks, linger);
        linger_timer.expires_after(core::from_seconds(linger));
        linger_timer.async_wait([&](const boost::system::error_code&) {
            shutdown();
            signals.cancel();
        });
    });
    io.run();
    return status;
}
