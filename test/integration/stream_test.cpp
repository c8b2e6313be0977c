// The whole system as real processes on 127.0.0.1: pixtream-tracker, pixtream-source reading an
// ffmpeg-generated file at its bitrate, and several pixtream-peer processes, each with a raw-TCP
// player capturing its output. Checks: every player's output equals the source input over the range
// it played; `ffmpeg -v warning` decodes it silently; a late joiner's output decodes; one peer
// SIGKILLed mid-stream disturbs no one; the end of the input reaches every player as EOF.
#include "subprocess.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using pixtream::test::subprocess;
using namespace std::chrono_literals;

namespace {

const std::string tracker_exe = PIXTREAM_TRACKER_EXE;
const std::string source_exe = PIXTREAM_SOURCE_EXE;
const std::string peer_exe = PIXTREAM_PEER_EXE;

struct temp_dir {
    fs::path path;
    temp_dir() {
        char tmpl[] = "/tmp/pixtream-it-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs ffmpeg to completion; its stderr (what -v warning prints) or a failure reason.
std::string run_ffmpeg(std::vector<std::string> args, int& status) {
    args.insert(args.begin(), {"/usr/bin/ffmpeg", "-nostdin", "-hide_banner", "-y"});
    subprocess p(args);
    status = p.wait(120s).value_or(-1);
    return p.stderr_text();
}

fs::path make_media(const fs::path& dir, const std::string& kind, int seconds) {
    const auto out = dir / ("input." + kind);
    const auto dur = std::to_string(seconds);
    std::vector<std::string> args;
    if (kind == "ts") {
        args = {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=" + dur, "-f", "lavfi", "-i",
                "sine=frequency=440:duration=" + dur, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-b:v",
                "400k", "-c:a", "aac", "-b:a", "64k", "-f", "mpegts", out.string()};
    } else {
        // Pink noise: a realistic audio bitrate (a pure tone compresses to almost nothing).
        args = {"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3:duration=" + dur, "-c:a", "libvorbis", "-q:a",
                "4", "-f", "ogg", out.string()};
    }
    int status = 0;
    const auto err = run_ffmpeg(args, status);
    BOOST_TEST_REQUIRE(status == 0, "ffmpeg could not make the test media: " << err);
    return out;
}

// "... peers on IP:PORT players on IP:PORT" -> (peer port, player port).
std::pair<std::uint16_t, std::uint16_t> ports_of(const std::string& line) {
    static const std::regex re(R"(peers on [^ ]+:(\d+) players on [^ ]+:(\d+))");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(line, m, re), "unexpected start-up line: " << line);
    return {static_cast<std::uint16_t>(std::stoi(m[1])), static_cast<std::uint16_t>(std::stoi(m[2]))};
}

// A raw-TCP player: connects and reads until EOF (or the deadline) into `data`.
struct player {
    std::string data;
    std::atomic<std::size_t> received{0};
    std::string error;
    asio::io_context io;
    tcp::socket socket{io};
    std::thread thread;

    void start(std::uint16_t port) {
        boost::system::error_code ec;
        socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        if (ec) {
            error = "connect: " + ec.message();
            return;
        }
        timeval tv{60, 0};
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        thread = std::thread([this] {
            char buf[65536];
            boost::system::error_code rec;
            for (;;) {
                const auto n = socket.read_some(asio::buffer(buf), rec);
                data.append(buf, n);
                received += n;
                if (rec == asio::error::interrupted) continue;  // a child's SIGCHLD, not the stream
                if (rec) {
                    if (rec != asio::error::eof) error = rec.message();
                    return;
                }
            }
        });
    }
    void join() {
        if (thread.joinable()) thread.join();
    }
    // A test that fails early must not leave the reader blocked: shut the socket, then join.
    ~player() {
        if (thread.joinable()) {
            ::shutdown(socket.native_handle(), SHUT_RDWR);
            thread.join();
        }
    }
};

std::string http_get(std::uint16_t port, const std::string& path) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::write(s, asio::buffer("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    std::string reply;
    boost::system::error_code ec;
    char buf[4096];
    while (!ec) reply.append(buf, s.read_some(asio::buffer(buf), ec));
    const auto body = reply.find("\r\n\r\n");
    return body == std::string::npos ? "" : reply.substr(body + 4);
}

// The output must be: an optional prefix that is a piece of the input (the container headers
// replayed for a player that joined late), then the input's tail from some offset to its end.
// Returns the length of that tail, or 0 if the output is not of that form.
std::size_t identical_tail(const std::string& out, const std::string& in) {
    std::size_t m = 0;
    while (m < out.size() && m < in.size() && out[out.size() - 1 - m] == in[in.size() - 1 - m]) ++m;
    const auto prefix = out.substr(0, out.size() - m);
    if (!prefix.empty() && in.find(prefix) == std::string::npos) return 0;
    return m;
}

// Waits (bounded) until `cond` holds, checking every 20 ms: a poll on an observable condition.
template <class F>
bool eventually(F cond, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

void stream_through_swarm(const std::string& kind, int seconds) {
    temp_dir dir;
    const auto media = make_media(dir.path, kind, seconds);
    const auto input = read_file(media);
    const double rate = static_cast<double>(input.size()) / seconds;

    subprocess tracker({tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "1", "--log-level", "warn"});
    const auto tline = tracker.read_line();
    BOOST_TEST_REQUIRE(tline.has_value());
    const auto tracker_url = "http://127.0.0.1:" + tline->substr(tline->rfind(':') + 1, tline->find(' ', tline->rfind(':')) - tline->rfind(':') - 1);

    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--rate", std::to_string(rate), "--key",
                       (dir.path / "key").string(), "--channel", "it-" + kind, "--linger", "8", "--chunk-seconds",
                       "0.25", "--log-level", "warn", tracker_url, "file", media.string()});
    const auto sline = source.read_line();
    if (!sline) BOOST_FAIL("source did not start: " << source.stderr_text());
    const auto source_player_port = ports_of(*sline).second;

    constexpr int peers = 5;
    std::vector<std::unique_ptr<subprocess>> procs;
    std::vector<std::unique_ptr<player>> players;
    std::vector<std::uint16_t> player_ports;
    auto start_peer = [&] {
        procs.push_back(std::make_unique<subprocess>(std::vector<std::string>{
            peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--buffer", "1.5", "--linger", "6", "--channel",
            "it-" + kind, "--log-level", "warn", tracker_url}));
        const auto line = procs.back()->read_line();
        // (Boost.Test evaluates a message even when the check passes: read stderr only on failure.)
        if (!line) BOOST_FAIL("peer did not start: " << procs.back()->stderr_text());
        players.push_back(std::make_unique<player>());
        player_ports.push_back(ports_of(*line).second);
        players.back()->start(player_ports.back());
    };
    for (int i = 0; i < peers; ++i) start_peer();

    // Peer 2 is killed once its player has received something; a late joiner starts then.
    if (!eventually([&] { return players[2]->received > input.size() / 10; }, 30s)) {
        BOOST_FAIL("no stream reached peer 2; its player: " << players[2]->error << "; its log: "
                                                            << procs[2]->stderr_text() << "; source log: "
                                                            << source.stderr_text());
    }
    procs[2]->signal(SIGKILL);
    start_peer();

    // Every surviving player reaches the end of the stream (EOF).
    for (std::size_t i = 0; i < players.size(); ++i) {
        if (i == 2) continue;
        players[i]->join();
        BOOST_TEST_CONTEXT("player " << i) { BOOST_TEST(players[i]->error.empty(), players[i]->error); }
    }
    // While the peers linger: their metrics (GET /stats on the player port).
    for (std::size_t i = 0; i < procs.size(); ++i) {
        if (i == 2) continue;
        BOOST_TEST_CONTEXT("peer " << i << " /stats") {
            const auto stats = boost::json::parse(http_get(player_ports[i], "/stats"));
            BOOST_TEST(stats.at("continuity").to_number<double>() == 1.0);
            BOOST_TEST(stats.at("chunks_skipped").to_number<double>() == 0.0);
            BOOST_TEST(stats.at("bad_chunks").to_number<double>() == 0.0);
            BOOST_TEST(stats.at("startup_s").is_number());
            BOOST_TEST(stats.at("lag_s").at("max").to_number<double>() < 10.0);
        }
    }
    BOOST_TEST_CONTEXT("source /stats") {
        const auto stats = boost::json::parse(http_get(source_player_port, "/stats"));
        BOOST_TEST(stats.at("bytes_published").to_number<double>() == static_cast<double>(input.size()));
        BOOST_TEST(stats.at("input").at("bytes").to_number<double>() == static_cast<double>(input.size()));
        BOOST_TEST(stats.at("input").at("ended").as_bool());
        const auto ratio = stats.at("source_upload_ratio").to_number<double>();
        BOOST_TEST(ratio >= 1.0);  // every chunk left the source at least once
        BOOST_TEST(ratio < 3.0);   // and the peers, not the source, served most copies
    }
    players[2]->join();
    for (std::size_t i = 0; i < players.size(); ++i) {
        if (i == 2) continue;
        BOOST_TEST_CONTEXT(kind << " player " << i << (i == players.size() - 1 ? " (late joiner)" : "")) {
            const auto& out = players[i]->data;
            BOOST_TEST_REQUIRE(out.size() > input.size() / 4, "only " << out.size() << " of " << input.size() << " bytes");
            const auto tail = identical_tail(out, input);
            BOOST_TEST(tail > 0U, "output is not the input's tail behind replayed headers");
            if (i + 1 < players.size()) BOOST_TEST(tail > input.size() / 2, "joined too late: " << tail);
            const auto file = dir.path / ("out" + std::to_string(i) + "." + kind);
            std::ofstream(file, std::ios::binary) << out;
            int status = 0;
            const auto warnings = run_ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"}, status);
            BOOST_TEST(status == 0);
            BOOST_TEST(warnings.empty(), "ffmpeg says: " << warnings);
        }
    }
    for (std::size_t i = 0; i < procs.size(); ++i) {
        if (i == 2) continue;
        BOOST_TEST_CONTEXT("peer " << i << " exit") { BOOST_TEST(procs[i]->wait(30s).value_or(-1) == 0); }
    }
    BOOST_TEST(source.wait(30s).value_or(-1) == 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(stream_integration)

BOOST_AUTO_TEST_CASE(mpegts_through_five_peers) { stream_through_swarm("ts", 8); }

BOOST_AUTO_TEST_CASE(ogg_vorbis_through_five_peers) { stream_through_swarm("ogg", 8); }

BOOST_AUTO_TEST_SUITE_END()
