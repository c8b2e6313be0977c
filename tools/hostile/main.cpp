// pixtream-hostile: a scripted hostile peer. Speaks the wire protocol (modules/wire) to one victim
// peer and misbehaves in the ways --help lists, reporting per connection what the victim did.
#include "attacks.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <csignal>
#include <iostream>
#include <random>
#include <sstream>
#include <string_view>

namespace asio = boost::asio;
namespace po = boost::program_options;
using asio::ip::tcp;
using namespace pixtream;
using namespace pixtream::hostile;

namespace {

int usage_error(const std::string& msg) {
    std::cerr << "pixtream-hostile: " << msg << "\nTry 'pixtream-hostile --help'.\n";
    return 2;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, sep);) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

// "HOST:PORT" or "[V6]:PORT" -> host and port; false if malformed.
bool split_host_port(const std::string& text, std::string& host, std::string& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return port.find_first_not_of("0123456789") == std::string::npos && std::stoul(port) >= 1 &&
           std::stoul(port) <= 65535;
}

// `text` as lines of at most `width` characters, each after `indent` spaces.
std::string wrap(std::string_view text, std::size_t indent, std::size_t width) {
    std::string out;
    std::string line;
    std::istringstream words{std::string(text)};
    for (std::string word; words >> word;) {
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            out += std::string(indent, ' ') + line + '\n';
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) out += std::string(indent, ' ') + line + '\n';
    return out;
}

std::string help_text(const po::options_description& opts) {
    std::ostringstream out;
    out << opts << "\nAttacks (run one after the other, each with --connections parallel connections):\n";
    for (const auto& a : attacks()) out << "  " << a.name << '\n' << wrap(a.help, 6, 90);
    out << "\nOutput: one JSON line per TCP connection, printed when it ends: attack, phase (oversized,\n"
           "slowloris), connection, peer_id, connected, bytes_sent, bytes_received, victim_handshake,\n"
           "admitted (the victim sent its BUFFER_MAP), victim_closed, kept (connected and not closed by the\n"
           "victim), closed_after_s (since connecting), closed_after_attack_s (since the hostile frame went\n"
           "out), close_reason, messages (received, by type), decode_error (the victim sent something\n"
           "undecodable), error, live_edge, details (per attack).\n"
           "Every wait is bounded: a connection lasts at most --connect-timeout + --duration seconds.\n"
           "\nExit status: 0 when at least one connection was established, 1 when none could be (or HOST\n"
           "does not resolve), 2 on usage errors.\n";
    return out.str();
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description opts(
        "Usage: pixtream-hostile [options] HOST:PORT --channel-key HEX --attack NAME[,NAME...]\n\n"
        "A scripted hostile peer for testing a pixtream-peer (or pixtream-source) at HOST:PORT, its peer\n"
        "port: speaks the wire protocol of docs/protocol.md and breaks it on purpose.\n"
        "Example: pixtream-hostile 127.0.0.1:60001 --channel-key KEY --attack forged --peer-id ID\n"
        "         pixtream-hostile 127.0.0.1:60001 --channel-key KEY --attack probe --peer-id ID --duration 2\n\n"
        "Options");
    std::string key_hex;
    std::string attack_list;
    std::string peer_hex;
    options opt;
    std::uint64_t seed = 0;
    std::vector<std::string> positional;
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("channel-key", po::value(&key_hex), "the channel's public key (64 hex digits), sent in the handshake")
        ("attack", po::value(&attack_list), "the attacks to run, comma-separated (see below)")
        ("peer-id", po::value(&peer_hex),
         "our peer id (40 hex digits) on every connection, e.g. to check that the victim banned it"
         " (default: a random id per connection)")
        ("listen-port", po::value(&opt.listen_port)->default_value(opt.listen_port),
         "the listen port our handshake advertises (the victim bans IP:PORT too when it is not 0)")
        ("connections", po::value(&opt.connections)->default_value(opt.connections),
         "parallel connections per attack (1 to 100)")
        ("duration", po::value(&opt.duration)->default_value(opt.duration),
         "seconds each connection lasts at most after connecting: how long floods go on and how long the"
         " victim is watched for closing the connection")
        ("connect-timeout", po::value(&opt.connect_timeout)->default_value(opt.connect_timeout),
         "seconds allowed for connecting")
        ("flood", po::value(&opt.flood)->default_value(opt.flood),
         "messages sent by request-flood (REQUESTs) and have-flood (HAVEs)")
        ("stall-bytes", po::value(&opt.stall_bytes)->default_value(opt.stall_bytes),
         "stall: bytes of chunks to ask for while not reading: more than the victim's socket buffers and ours hold"
         " (Linux: up to net.ipv4.tcp_wmem's maximum), so that its writer blocks; and at most about 320 chunks"
         " more than those hold, or the victim bans us for too many requests instead")
        ("drip-interval", po::value(&opt.drip_interval)->default_value(opt.drip_interval),
         "slowloris: seconds between two bytes of the handshake")
        ("garbage-bytes", po::value(&opt.garbage_bytes)->default_value(opt.garbage_bytes),
         "garbage: how many random bytes to send")
        ("seed", po::value(&seed),
         "seed of the random bytes and ids the attacks send (default: random); peer ids are always random");
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
        std::cout << help_text(opts);
        return 0;
    }
    if (positional.size() != 1) return usage_error("expected one HOST:PORT");
    std::string host;
    std::string port;
    if (!split_host_port(positional[0], host, port)) return usage_error("'" + positional[0] + "' is not HOST:PORT");
    if (!vm.count("channel-key")) return usage_error("--channel-key is required");
    const auto key = core::channel_key::from_hex(key_hex);
    if (!key) return usage_error("--channel-key must be 64 hex digits");
    opt.channel = *key;
    if (vm.count("peer-id")) {
        opt.peer_id = core::peer_id::from_hex(peer_hex);
        if (!opt.peer_id) return usage_error("--peer-id must be 40 hex digits");
    }
    if (!vm.count("attack")) return usage_error("--attack is required");
    std::vector<attack> plan;
    for (const auto& name : split(attack_list, ',')) {
        const auto a = parse_attack(name);
        if (!a) return usage_error("unknown attack '" + name + "'");
        plan.push_back(*a);
    }
    if (plan.empty()) return usage_error("--attack names no attack");
    if (opt.connections < 1 || opt.connections > 100) return usage_error("--connections must be 1 to 100");
    if (!(opt.duration > 0 && opt.duration <= 3600)) return usage_error("--duration must be more than 0 and at most 3600");
    if (!(opt.connect_timeout > 0 && opt.connect_timeout <= 60)) return usage_error("--connect-timeout must be 0 to 60");
    if (opt.flood < 1 || opt.flood > 10'000'000) return usage_error("--flood must be 1 to 10000000");
    if (opt.stall_bytes < 1 || opt.stall_bytes > (1ULL << 30U)) return usage_error("--stall-bytes must be 1 to 1 GiB");
    if (!(opt.drip_interval > 0 && opt.drip_interval <= 60)) return usage_error("--drip-interval must be 0 to 60");
    if (opt.garbage_bytes < 1 || opt.garbage_bytes > (64U << 20U)) return usage_error("--garbage-bytes must be 1 to 64 MiB");
    if (!vm.count("seed")) seed = std::random_device{}();

    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context io(1);
    boost::system::error_code ec;
    const auto resolved = tcp::resolver(io).resolve(host, port, ec);
    if (ec || resolved.empty()) {
        std::cerr << "pixtream-hostile: cannot resolve " << host << ": " << (ec ? ec.message() : "no address") << '\n';
        return 1;
    }
    opt.victim = resolved.begin()->endpoint();

    context ctx{io.get_executor(), opt, std::mt19937_64(seed), [](const boost::json::object& report) {
                    std::cout << boost::json::serialize(report) << std::endl;
                }};
    // Each connection bounds its own waits; this is only the backstop should one of them not.
    const auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(opt.connect_timeout + opt.duration + 10));
    for (const auto a : plan) {
        for (int i = 0; i < opt.connections; ++i) asio::co_spawn(io, run(&ctx, a, i), asio::detached);
        io.restart();
        io.run_for(limit);
        if (!io.stopped()) {
            std::cerr << "pixtream-hostile: attack " << name_of(a) << " overran its time limit: stopped here\n";
            break;
        }
    }
    if (ctx.connected == 0) {
        std::cerr << "pixtream-hostile: could not connect to " << positional[0] << '\n';
        return 1;
    }
    return 0;
}
