// Clear errors from pixtream-source and pixtream-peer: a message on stderr and a non-zero exit,
// never a crash or a hang. Usage errors exit 2, run-time failures exit 1.
#include "subprocess.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

namespace asio = boost::asio;
using asio::ip::tcp;
using pixtream::test::subprocess;
using namespace std::chrono_literals;

namespace {

const std::string source_exe = PIXTREAM_SOURCE_EXE;
const std::string peer_exe = PIXTREAM_PEER_EXE;
const std::string key_hex(64, 'a');

struct outcome {
    int status;
    std::string err;
    std::string out;
};

outcome run(std::vector<std::string> args) {
    subprocess p(std::move(args));
    const auto status = p.wait(20s);
    return {status.value_or(-1), p.stderr_text(), p.stdout_text()};
}

// A port nobody listens on.
std::uint16_t dead_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(program_errors)

BOOST_AUTO_TEST_CASE(help_explains_every_option) {
    const std::pair<std::string, std::vector<std::string>> programs[] = {
        {source_exe, {"--ip", "--port", "--sport", "--rate", "--loop", "--channel", "--key", "--max-peers",
                      "--upload-limit", "--chunk-seconds", "--chunk-bytes", "--linger", "--log-level", "TRACKER_URL", "listen", "udp", "icecast"}},
        {peer_exe, {"--ip", "--port", "--sport", "--channel", "--channel-key", "--upload-limit", "--upload-backlog", "--max-peers",
                    "--buffer", "--burst", "--linger", "--wait-channel", "--log-level", "TRACKER_URL", "/stats"}},
    };
    for (const auto& [exe, options] : programs) {
        const auto r = run({exe, "--help"});
        BOOST_TEST(r.status == 0);
        for (const auto& o : options) {
            BOOST_TEST_CONTEXT(exe << " " << o) { BOOST_TEST(r.out.find(o) != std::string::npos); }
        }
    }
}

BOOST_AUTO_TEST_CASE(usage_errors) {
    const auto dir = std::filesystem::temp_directory_path();
    const std::tuple<std::vector<std::string>, std::string> cases[] = {
        {{peer_exe, "ftp://tracker"}, "tracker URL 'ftp://tracker': only http:// tracker URLs are supported"},
        {{peer_exe, "not a url"}, "not an absolute URL"},
        {{peer_exe}, "expected one TRACKER_URL"},
        {{peer_exe, "--buffer", "0", "http://127.0.0.1:1"}, "--buffer must be between 0.2 and 120 seconds"},
        {{peer_exe, "--channel-key", "xyz", "http://127.0.0.1:1"}, "--channel-key must be 64 hex digits"},
        {{peer_exe, "--upload-backlog", "0", "http://127.0.0.1:1"}, "--upload-backlog must be between 0.05 and 60 seconds"},
        {{peer_exe, "--burst", "-1", "http://127.0.0.1:1"}, "--burst must be between 0 and 60 seconds"},
        {{source_exe, "http://127.0.0.1:1", "file", "/nonexistent/input.ts"},
         "cannot open input file '/nonexistent/input.ts': No such file or directory"},
        {{source_exe, "http://127.0.0.1:1", "udp", "x"}, "invalid port 'x' in 'x' (expected 1 to 65535)"},
        {{source_exe, "http://127.0.0.1:1", "listen", "nowhere:9000"}, "'nowhere' in 'nowhere:9000' is not an IP address"},
        {{source_exe, "http://127.0.0.1:1", "listen", "239.1.1.1:9000"}, "cannot listen for TCP on the multicast address"},
        {{source_exe, "http://127.0.0.1:1", "rtmp", "x"}, "unknown input kind 'rtmp' (expected http, tcp, file, stdin, listen, udp or icecast)"},
        {{source_exe, "http://127.0.0.1:1", "tcp", "localhost:70000"}, "1 to 65535"},
        {{source_exe, "http://127.0.0.1:1"}, "expected TRACKER_URL {http|tcp|file|stdin|listen|udp|icecast} SOURCE"},
        {{source_exe, "gopher://x", "stdin", "-"}, "only http:// tracker URLs are supported"},
    };
    for (const auto& [args, message] : cases) {
        BOOST_TEST_CONTEXT((args.size() > 1 ? args[1] : args[0])) {
            const auto r = run(args);
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.err.find(message) != std::string::npos, r.err);
            BOOST_TEST(r.err.find("--help") != std::string::npos);
        }
    }
}

// A tracker that stays down: the peer asks again with backoff, saying so each time, for
// --wait-channel seconds, then gives up with a clear error.
BOOST_AUTO_TEST_CASE(unreachable_tracker) {
    const auto port = std::to_string(dead_port());
    const auto start = std::chrono::steady_clock::now();
    const auto r = run({peer_exe, "-p", "0", "-s", "0", "--wait-channel", "3", "http://127.0.0.1:" + port});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("cannot find the channel: cannot connect to http://127.0.0.1:" + port) != std::string::npos,
               r.err);
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 3s));  // it kept asking
    // Asked at 0, 1 and 3 s: two retries announced.
    std::size_t said = 0;
    for (auto pos = r.out.find("tracker unreachable"); pos != std::string::npos; pos = r.out.find("tracker unreachable", pos + 1))
        ++said;
    BOOST_TEST(said >= 2U, r.out);
}

// A tracker that answers but has no such channel: the peer waits --wait-channel seconds, then says so.
BOOST_AUTO_TEST_CASE(channel_never_appears) {
    subprocess tracker({PIXTREAM_TRACKER_EXE, "-p", "0", "--bind", "127.0.0.1"});
    const auto line = tracker.read_line();
    BOOST_TEST_REQUIRE(line.has_value());
    const auto url = line->substr(line->find("http://"), line->find(" (") - line->find("http://"));
    const auto start = std::chrono::steady_clock::now();
    const auto r = run({peer_exe, "-p", "0", "-s", "0", "--channel", "nowhere", "--wait-channel", "1", url});
    BOOST_TEST(r.status == 1);
    BOOST_TEST((r.err.find("cannot find the channel: the tracker has no channel yet") != std::string::npos ||
                r.err.find("no channel named 'nowhere'") != std::string::npos),
               r.err);
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 1s));  // it did wait
}

BOOST_AUTO_TEST_CASE(ports_in_use) {
    asio::io_context io;
    tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = std::to_string(taken.local_endpoint().port());
    const auto peer = run({peer_exe, "-i", "127.0.0.1", "-p", port, "-s", "0", "--channel-key", key_hex,
                           "http://127.0.0.1:1"});
    BOOST_TEST(peer.status == 1);
    BOOST_TEST(peer.err.find("cannot listen for peers on 127.0.0.1:" + port + ": Address already in use") !=
               std::string::npos, peer.err);
    const auto player = run({peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", port, "--channel-key", key_hex,
                             "http://127.0.0.1:1"});
    BOOST_TEST(player.status == 1);
    BOOST_TEST(player.err.find("cannot listen for players on 127.0.0.1:" + port + ": Address already in use") !=
               std::string::npos, player.err);
    const auto key = (std::filesystem::temp_directory_path() / ("pixtream-errors-" + port + ".key")).string();
    const auto source = run({source_exe, "-i", "127.0.0.1", "-p", port, "-s", "0", "--key", key, "http://127.0.0.1:1",
                             "stdin", "-"});
    std::filesystem::remove(key);
    BOOST_TEST(source.status == 1);
    BOOST_TEST(source.err.find("cannot listen for peers on 127.0.0.1:" + port + ": Address already in use") !=
               std::string::npos, source.err);
    // A pushed input's port, taken: an error at start-up, not a retry loop.
    const auto pushed = run({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--key", key, "http://127.0.0.1:1",
                             "listen", "127.0.0.1:" + port});
    std::filesystem::remove(key);
    BOOST_TEST(pushed.status == 1);
    BOOST_TEST(pushed.err.find("cannot listen for the broadcaster on 127.0.0.1:" + port + ": Address already in use") !=
               std::string::npos, pushed.err);
}

BOOST_AUTO_TEST_CASE(bad_key_file) {
    const auto key = std::filesystem::temp_directory_path() / "pixtream-bad.key";
    { std::ofstream(key) << "not a key\n"; }
    const auto r = run({source_exe, "-p", "0", "-s", "0", "--key", key.string(), "http://127.0.0.1:1", "stdin", "-"});
    std::filesystem::remove(key);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("does not hold 128 hex digits") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()
