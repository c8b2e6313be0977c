// pixtream-peer: joins a channel's swarm, trades chunks and serves the rebuilt stream to players.
#include "pixtream/net/net.hpp"
#include "pixtream/peer/node.hpp"
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

#include <algorithm>
#include <deque>
#include <iostream>
#include <random>
#include <thread>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace pixtream;

namespace {

int usage_error(const std::string& msg) {
    std::cerr << "pixtream-peer: " << msg << "\nTry 'pixtream-peer --help'.\n";
    return 2;
}

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// Why a channel lookup gave no key: worth asking again (the tracker or the channel may come), or not.
enum class lookup_miss { none, absent, unreachable, final };

// Finds the channel key on the tracker: by name, or the only channel there is. `miss` says why not:
// absent (the tracker answered but has no such channel yet), unreachable, or final (several match, or
// an unreadable answer).
asio::awaitable<std::variant<core::channel_key, std::string>> lookup_channel(tracker::tracker_url url,
                                                                            std::string name, lookup_miss* miss) {
    using result = std::variant<core::channel_key, std::string>;
    *miss = lookup_miss::final;
    auto got = co_await tracker::http_get(url, url.prefix + "/channels", core::seconds(5));
    if (got.index() == 1) {
        *miss = lookup_miss::unreachable;
        co_return result{std::in_place_index<1>, std::get<1>(got)};
    }
    boost::system::error_code ec;
    const auto v = boost::json::parse(std::get<0>(got), ec);
    if (ec || !v.is_object() || !v.at("channels").is_array())
        co_return result{std::in_place_index<1>, "tracker " + url.text + " sent an unreadable channel list"};
    std::vector<std::pair<std::string, std::string>> found;  // name, key
    std::string names;
    for (const auto& c : v.at("channels").get_array()) {
        const auto& o = c.as_object();
        const std::string n(o.at("name").as_string());
        names += (names.empty() ? "" : ", ") + ("'" + n + "'");
        if (name.empty() || n == name) found.emplace_back(n, std::string(o.at("key").as_string()));
    }
    if (found.size() != 1) {
        std::string why = found.empty() ? (name.empty() ? "the tracker has no channel yet"
                                                        : "no channel named '" + name + "' on the tracker")
                                        : "several channels" + (name.empty() ? std::string() : " named '" + name + "'") +
                                              ": choose one with --channel or --channel-key";
        if (!names.empty()) why += " (channels: " + names + ")";
        *miss = found.empty() ? lookup_miss::absent : lookup_miss::final;
        co_return result{std::in_place_index<1>, why};
    }
    *miss = lookup_miss::none;
    co_return result{std::in_place_index<0>, *core::channel_key::from_hex(found[0].second)};
}

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
    const auto started = core::clock::now();
    po::options_description opts(
        "Usage: pixtream-peer [options] TRACKER_URL\n\n"
        "Joins a channel: finds peers through the tracker, trades chunks with them (verifying every\n"
        "chunk's signature), and serves the stream on SPORT to any number of players: raw TCP (a client\n"
        "that sends nothing) or HTTP (GET / for the stream, GET /stats for JSON metrics).\n"
        "Example: pixtream-peer http://tracker:8080 --channel news   then   ffplay tcp://127.0.0.1:30001\n\n"
        "Options");
    std::string ip = "0.0.0.0";
    std::uint16_t port = 60001;
    std::uint16_t sport = 30001;
    std::string channel;
    std::string channel_key;
    double upload_limit = 0;
    double upload_backlog = 0.5;
    std::size_t max_peers = 16;
    double buffer = 3;
    double burst = 5.5;
    double linger = 5;
    double wait_channel = 10;
    unsigned push_substreams = 0;
    std::string log_level = "info";
    std::vector<std::string> positional;
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("ip,i", po::value(&ip)->default_value(ip), "address to listen on for peers and players")
        ("port,p", po::value(&port)->default_value(port), "TCP port for peer connections (0: any free port)")
        ("sport,s", po::value(&sport)->default_value(sport), "TCP port serving the stream to players (0: any free port)")
        ("channel", po::value(&channel), "name of the channel to watch (default: the tracker's only channel)")
        ("channel-key", po::value(&channel_key),
         "the channel's public key (64 hex digits): pins the source, whatever the tracker says")
        ("upload-limit", po::value(&upload_limit)->default_value(upload_limit),
         "bytes per second uploaded to other peers at most (0: no cap). Not needed: the peer measures what its "
         "uplink drains and paces and refuses requests from that; this only caps it further")
        ("upload-backlog", po::value(&upload_backlog)->default_value(upload_backlog),
         "seconds of waiting uploads (at the measured uplink rate) beyond which requests are rejected at once, "
         "so that neighbours ask someone else instead of waiting")
        ("max-peers", po::value(&max_peers)->default_value(max_peers), "most peer connections")
        ("burst", po::value(&burst)->default_value(burst),
         "fast start: a player that connects gets at once the stream from a keyframe at least this many seconds "
         "back, then live (ffmpeg and ffplay read 5 s of a stream before they show anything: so they start at once); "
         "the player then plays that much further behind. 0: no burst, a player waits for the next keyframe")
        ("buffer", po::value(&buffer)->default_value(buffer),
         "seconds of stream held behind the live edge: more survives more trouble, less is closer to live")
        ("linger", po::value(&linger)->default_value(linger),
         "seconds to keep serving other peers after the stream ended")
        ("wait-channel", po::value(&wait_channel)->default_value(wait_channel),
         "seconds to wait for the channel to appear on the tracker (the source may start later), asking every "
         "second, and for an unreachable tracker to answer, asking again after 1, 2, 4, 8 then every 10 s; 0: ask once")
        ("push-substreams", po::value(&push_substreams)->default_value(push_substreams),
         "experimental: split the stream into this many substreams (1-32), each pushed to this peer by one "
         "neighbour it subscribes to; 0 (the default): no push trees, chunks are pulled. The whole swarm should "
         "use one value (neighbours with another push nothing to this peer); on emulated WAN links they were "
         "slower than pulling so far (docs/architecture.md)")
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
    if (positional.size() != 1) return usage_error("expected one TRACKER_URL");
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") return usage_error("unknown --log-level '" + log_level + "'");
    spdlog::set_level(level);
    if (!(buffer >= 0.2 && buffer <= 120)) return usage_error("--buffer must be between 0.2 and 120 seconds");
    if (!(burst >= 0 && burst <= 60)) return usage_error("--burst must be between 0 and 60 seconds");
    if (upload_limit < 0 || linger < 0 || wait_channel < 0)
        return usage_error("--upload-limit, --linger and --wait-channel cannot be negative");
    if (max_peers == 0) return usage_error("--max-peers must be at least 1");
    if (push_substreams > 32) return usage_error("--push-substreams must be between 0 and 32");
    if (!(upload_backlog >= 0.05 && upload_backlog <= 60)) return usage_error("--upload-backlog must be between 0.05 and 60 seconds");
    std::string error;
    const auto tracker_url = tracker::parse_tracker_url(positional[0], error);
    if (!tracker_url) return usage_error("tracker URL '" + positional[0] + "': " + error);
    std::optional<core::channel_key> key;
    if (vm.count("channel-key")) {
        key = core::channel_key::from_hex(channel_key);
        if (!key) return usage_error("--channel-key must be 64 hex digits");
    }
    boost::system::error_code aec;
    const auto address = asio::ip::make_address(ip, aec);
    if (aec) return usage_error("--ip '" + ip + "' is not an IP address");

    asio::io_context io(1);
    if (!key) {
        // The channel may not be there yet (peers started before the source): ask again every second;
        // the tracker may be down: ask again after 1, 2, 4, 8 s (then every 10 s), saying so each time.
        // Either way for --wait-channel seconds.
        std::optional<std::variant<core::channel_key, std::string>> found;
        const auto give_up = core::clock::now() + core::from_seconds(wait_channel);
        core::duration backoff = core::seconds(1);
        for (;;) {
            found.reset();
            lookup_miss miss = lookup_miss::final;
            asio::co_spawn(io, lookup_channel(*tracker_url, channel, &miss), [&](std::exception_ptr e, auto r) {
                if (!e) found = std::move(r);
            });
            io.run();
            io.restart();
            const auto now = core::clock::now();
            if (miss == lookup_miss::none || miss == lookup_miss::final || now >= give_up) break;
            auto pause = core::seconds(1);
            if (miss == lookup_miss::unreachable) {
                pause = std::chrono::duration_cast<core::seconds>(backoff);
                backoff = std::min<core::duration>(backoff * 2, core::seconds(10));
            }
            const auto left = give_up - now;
            const auto wait = std::min<core::duration>(pause, left);
            if (miss == lookup_miss::unreachable) {
                spdlog::warn("peer: tracker unreachable: {}; asking again in {:.1f} s (giving up in {:.1f} s, --wait-channel)",
                             found && found->index() == 1 ? std::get<1>(*found) : "no answer", core::to_seconds(wait),
                             core::to_seconds(left));
            }
            std::this_thread::sleep_for(wait);
        }
        if (!found || found->index() == 1) {
            std::cerr << "pixtream-peer: cannot find the channel: " << (found ? std::get<1>(*found) : "lookup failed")
                      << '\n';
            return 1;
        }
        key = std::get<0>(*found);
    }

    std::random_device rd;
    peer::node_config ncfg;
    ncfg.channel = *key;
    ncfg.self = core::peer_id::random(rd);
    ncfg.listen = asio::ip::tcp::endpoint(address, port);
    ncfg.max_peers = max_peers;
    ncfg.target_peers = std::min<std::size_t>(max_peers, 8);
    ncfg.upload_limit = upload_limit;
    ncfg.max_upload_backlog = core::from_seconds(upload_backlog);
    ncfg.buffer = core::from_seconds(buffer);
    ncfg.push_substreams = push_substreams;
    ncfg.seed = rd();
    std::shared_ptr<peer::node> node;
    try {
        node = std::make_shared<peer::node>(io.get_executor(), ncfg);
    } catch (const boost::system::system_error& e) {
        std::cerr << fmt::format("pixtream-peer: cannot listen for peers on {}:{}: {}\n", ip, port, e.code().message());
        return 1;
    }

    // Lag of every chunk played (seconds behind the source), the last 10,000.
    std::deque<double> lags;
    std::shared_ptr<stream::output_server> output;
    auto stats_json = [&] {
        const auto s = node->stats();
        const auto o = output->stats();
        std::vector<double> l(lags.begin(), lags.end());
        boost::json::object j{
            {"continuity", s.playout.continuity()},
            {"startup_s", o.first_byte ? boost::json::value(core::to_seconds(*o.first_byte - started)) : boost::json::value(nullptr)},
            {"lag_s", boost::json::object{{"p50", quantile(l, 0.5)}, {"p95", quantile(l, 0.95)},
                                          {"max", l.empty() ? 0.0 : *std::max_element(l.begin(), l.end())}}},
            {"chunks_played", s.playout.played},
            {"chunks_skipped", s.playout.skipped},
            {"chunks_late", s.playout.late},
            {"neighbours", s.neighbours},
            {"bytes_in", s.wire_bytes_in},
            {"bytes_out", s.wire_bytes_out},
            {"payload_bytes_in", s.payload_bytes_in},
            {"payload_bytes_out", s.payload_bytes_out},
            {"overhead_ratio",
             s.payload_bytes_in + s.payload_bytes_out == 0
                 ? 0.0
                 : static_cast<double>(s.wire_bytes_in + s.wire_bytes_out - s.payload_bytes_in - s.payload_bytes_out) /
                       static_cast<double>(s.payload_bytes_in + s.payload_bytes_out)},
            {"upload_bps", s.upload_rate * 8},
            {"uplink", boost::json::object{{"estimate_bps", s.uplink_estimate * 8},
                                           {"pacing_bps", s.uplink_pacing * 8},
                                           {"busy_intervals", s.uplink_busy_intervals},
                                           {"kernel_unsent_bytes", s.kernel_unsent},
                                           {"queued_bytes", s.upload_queued}}},
            {"download_bps", s.download_rate * 8},
            {"push_tree", boost::json::object{{"capacity", s.tree_capacity},
                                              {"children", s.tree_children},
                                              {"parents", s.tree_parents},
                                              {"subscribes", s.tree.subscribes},
                                              {"parent_changes", s.tree.parent_changes},
                                              {"refusals", s.tree.refusals},
                                              {"revocations", s.tree.revocations}}},
            {"scheduler", boost::json::object{{"requests", s.scheduler.requests},
                                              {"duplicate_requests", s.scheduler.duplicate_requests},
                                              {"request_timeouts", s.scheduler.timeouts},
                                              {"rejects", s.scheduler.rejects},
                                              {"missed_deadline", s.scheduler.missed_deadline}}},
            {"bad_chunks", s.bad_chunks},
            {"protocol_errors", s.protocol_errors},
            {"bans", s.bans},
            {"rejects_sent", s.rejects_sent},
            {"duplicate_chunks", s.duplicate_chunks},
            {"players", o.clients},
            {"players_dropped_slow", o.dropped_slow},
        };
        return boost::json::serialize(j);
    };
    stream::output_config ocfg;
    ocfg.http_chunked = true;  // HTTP/1.1 players see a clean end of stream, not a truncated body
    ocfg.burst_seconds = burst;
    try {
        output = std::make_shared<stream::output_server>(io.get_executor(), asio::ip::tcp::endpoint(address, sport), ocfg,
                                                         stats_json);
    } catch (const boost::system::system_error& e) {
        std::cerr << fmt::format("pixtream-peer: cannot listen for players on {}:{}: {}\n", ip, sport, e.code().message());
        return 1;
    }

    tracker::client_config tcfg;
    tcfg.urls = {*tracker_url};
    tcfg.params.channel = *key;
    tcfg.params.peer = ncfg.self;
    tcfg.params.port = node->advertised_port();
    tcfg.params.numwant = 30;
    tcfg.seed = rd();
    auto announcer = std::make_shared<tracker::client>(io.get_executor(), tcfg, [&](const auto& peers) {
        for (const auto& p : peers) node->add_candidate(p.ip, p.port);
    });
    announcer->on_error([](const std::string& why) { spdlog::warn("peer: tracker unreachable: {}", why); });

    int status = 0;
    asio::steady_timer linger_timer(io);
    auto shutdown = [&] {
        announcer->stop();
        output->stop();
        node->stop();
        linger_timer.cancel();
    };
    asio::signal_set signals(io, SIGINT, SIGTERM);
    node->on_playback({[&](const wire::chunk_ptr& c) {
                           if (c->has_header_ref()) {
                               if (auto h = node->store().get(c->header_ref)) output->set_header(h);
                           }
                           output->write(c);
                           lags.push_back(static_cast<double>(static_cast<std::int64_t>(wall_now() - c->timestamp)) / 1e6);
                           if (lags.size() > 10000) lags.pop_front();
                       },
                       [&] { output->gap(); },
                       [&](const wire::chunk_ptr&) {
                           output->end_of_stream();
                           spdlog::info("peer: end of stream; serving other peers for {} s more", linger);
                           linger_timer.expires_after(core::from_seconds(linger));
                           linger_timer.async_wait([&](const boost::system::error_code& ec) {
                               if (ec) return;
                               shutdown();
                               signals.cancel();
                           });
                       }});
    std::cout << fmt::format("pixtream-peer channel {} peers on {}:{} players on {}:{}", key->to_hex(), ip,
                             node->local_endpoint().port(), ip, output->local_endpoint().port())
              << std::endl;
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: shutting down", sig);
        shutdown();
    });
    // A failed part stops the whole program with status 1.
    auto fail = [&](const std::string& what) {
        return net::log_errors("peer: " + what, [&](const std::exception&) {
            status = 1;
            io.stop();
        });
    };
    asio::co_spawn(io, node->run(), fail("node"));
    asio::co_spawn(io, output->run(), fail("stream output"));
    asio::co_spawn(io, announcer->run(), fail("tracker client"));
    io.run();
    return status;
}
