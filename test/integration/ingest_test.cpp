// Live inputs the way broadcasters feed them, as real processes on 127.0.0.1.
// - The original system's documented usage: `nc -l -p PORT < mediafile.ogg` and
//   `pixtream-source URL tcp 127.0.0.1:PORT`. netcat dumps the whole file as fast as TCP takes it; the
//   source must publish it at real time by the media's own clock, so every player receives it over
//   about its duration (not within a second), byte for byte, and ffmpeg decodes it without a warning.
// - The players get the right Content-Type for each container.
#include "helpers.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace pixtream::test;
using namespace std::chrono_literals;

namespace {


// The HTTP response head a player gets for GET / (read until the blank line, at most 20 s).
std::string response_head(std::uint16_t port) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{20, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::string reply;
    char buf[4096];
    // Plain recv: it honours SO_RCVTIMEO (Asio's blocking read would poll on past it).
    while (reply.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(s.native_handle(), buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
    }
    return reply.substr(0, reply.find("\r\n\r\n"));
}

fs::path make_clip(const fs::path& dir, const std::string& name, std::vector<std::string> codec, int seconds) {
    const auto out = dir / name;
    std::vector<std::string> args = {"-f", "lavfi", "-i",
                                     "anoisesrc=color=pink:amplitude=0.3:duration=" + std::to_string(seconds)};
    args.insert(args.end(), codec.begin(), codec.end());
    args.push_back(out.string());
    int status = 0;
    const auto err = run_ffmpeg(args, status);
    BOOST_TEST_REQUIRE(status == 0, "ffmpeg could not make " << name << ": " << err);
    return out;
}

// netcat dumps `clip` into the source's tcp input; `peers` peers with a raw-TCP player each.
void dump_over_tcp_plays_in_real_time(const std::string& name, std::vector<std::string> codec,
                                      const std::string& content_type, const std::string& clock) {
    constexpr int seconds = 12;
    temp_dir dir;
    const auto clip = make_clip(dir.path, name, std::move(codec), seconds);
    const auto input = read_file(clip);
    const auto port = free_port();
    // nc -l -p PORT < clip (netcat-traditional), through a shell for the redirection.
    subprocess nc({"/bin/sh", "-c", "exec nc -l -p " + std::to_string(port) + " < '" + clip.string() + "'"});
    // nc listens once it runs: the source retries its connection until then.
    subprocess tracker({tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "1", "--log-level", "warn"});
    const auto turl = tracker_url(tracker);
    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--key", (dir.path / "key").string(),
                       "--channel", "nc", "--log-level", "info", turl, "tcp",
                       "127.0.0.1:" + std::to_string(port)});
    const auto sline = source.read_line();
    if (!sline) BOOST_FAIL("source did not start: " << source.stderr_text());
    const auto source_player_port = ports_of(*sline).second;

    constexpr int peers = 3;
    std::vector<std::unique_ptr<subprocess>> procs;
    std::vector<std::unique_ptr<player>> players;
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < peers; ++i) {
        procs.push_back(std::make_unique<subprocess>(std::vector<std::string>{
            peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--buffer", "1", "--channel", "nc", "--log-level",
            "warn", turl}));
        const auto line = procs.back()->read_line();
        if (!line) BOOST_FAIL("peer did not start: " << procs.back()->stderr_text());
        ports.push_back(ports_of(*line).second);
        players.push_back(std::make_unique<player>());
        players.back()->start(ports.back());
    }
    // While the stream flows (an HTTP player gets its head with the first chunk it is sent).
    BOOST_TEST_REQUIRE(eventually([&] { return players[0]->received > 0; }, 20s));
    const auto head = response_head(ports[0]);
    BOOST_TEST(head.find("Content-Type: " + content_type + "\r\n") != std::string::npos, head);
    // Each player's first byte, and when it had the end of the input.
    std::vector<std::optional<std::chrono::steady_clock::time_point>> first(peers), done(peers);
    const bool all = eventually(
        [&] {
            const auto now = std::chrono::steady_clock::now();
            bool complete = true;
            for (int i = 0; i < peers; ++i) {
                if (!first[i] && players[i]->received > 0) first[i] = now;
                if (!done[i] && players[i]->received >= input.size() / 2) {
                    // The player may have joined after the start: it is done when the input's end is in.
                    if (match_output(players[i]->snapshot(), input).reaches_end()) done[i] = now;
                }
                complete = complete && done[i].has_value();
            }
            return complete;
        },
        std::chrono::seconds(seconds + 30));
    const auto stats = boost::json::parse(http_get(source_player_port, "/stats"));
    for (auto& p : procs) p->signal(SIGTERM);
    source.signal(SIGTERM);
    for (auto& p : players) p->join();
    BOOST_TEST_REQUIRE(all, "not every player got the whole stream in time; source /stats: " << stats);
    // The source read the input as fast as netcat sent it, and held it back to real time by its clock.
    BOOST_TEST(stats.at("input").at("clock").as_string() == clock);
    BOOST_TEST(stats.at("input").at("bytes").to_number<double>() == static_cast<double>(input.size()));
    BOOST_TEST(stats.at("input").at("held_s").to_number<double>() > seconds / 2.0);
    for (int i = 0; i < peers; ++i) {
        BOOST_TEST_CONTEXT(name << " player " << i) {
            const auto& out = players[i]->data;
            const auto m = match_output(out, input);
            BOOST_TEST(m.exact(), m.describe());
            BOOST_TEST(m.start < input.size() / 4, "joined too late: " << m.describe());
            // Real time: the part of the input this player got took about as long as it lasts.
            const double share = 1.0 - static_cast<double>(m.start) / static_cast<double>(input.size());
            const double took = std::chrono::duration<double>(*done[i] - *first[i]).count();
            BOOST_TEST(took > 0.8 * share * seconds - 1.0, "received " << share * seconds << " s of media in " << took << " s");
            BOOST_TEST(took < share * seconds + 5.0, "received " << share * seconds << " s of media in " << took << " s");
            const auto file = dir.path / ("out" + std::to_string(i) + "-" + name);
            std::ofstream(file, std::ios::binary) << out;
            int status = 0;
            const auto warnings = run_ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"}, status);
            BOOST_TEST(status == 0);
            // (A headerless MP3's duration is estimated: a note of the demuxer, not a decoding problem.)
            std::string problems;
            std::istringstream lines(warnings);
            for (std::string line; std::getline(lines, line);) {
                if (line.find("Estimating duration from bitrate") == std::string::npos) problems += line + "\n";
            }
            BOOST_TEST(problems.empty(), "ffmpeg says: " << problems);
        }
    }
}

// Video frames ffprobe decodes from an MPEG-TS capture (a capture cut anywhere: its last frame may be
// partial, so warnings are not looked at here).
int decoded_frames(const fs::path& file) {
    subprocess p({"/usr/bin/ffprobe", "-v", "quiet", "-select_streams", "v:0", "-count_frames", "-show_entries",
                  "stream=nb_read_frames", "-of", "csv=p=0", file.string()});
    p.wait(60s);
    const auto text = p.stdout_text();
    return text.empty() ? -1 : std::atoi(text.c_str());
}

// A broadcaster pushes MPEG-TS with ffmpeg (`-re`, at real time) to a pushed input (`kind` listen or
// udp at `location`, ffmpeg's `url`), stops, and pushes a second run: players on two peers receive
// both runs on the same channel.
void pushed_by_ffmpeg_continues_the_channel(const std::string& kind, const std::string& location, const std::string& url,
                                            bool mp3 = false) {
    temp_dir dir;
    subprocess tracker({tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "1", "--log-level", "warn"});
    const auto turl = tracker_url(tracker);
    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--key", (dir.path / "key").string(),
                       "--channel", "push", "--log-level", "warn", turl, kind, location});
    const auto sline = source.read_line();
    if (!sline) BOOST_FAIL("source did not start: " << source.stderr_text());
    const auto source_player_port = ports_of(*sline).second;
    const auto push = [&](int seconds) {
        const auto d = std::to_string(seconds);
        if (mp3)
            return std::make_unique<subprocess>(std::vector<std::string>{
                "/usr/bin/ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                "anoisesrc=color=pink:amplitude=0.3:duration=" + d, "-c:a", "libmp3lame", "-b:a", "192k",
                "-content_type", "audio/mpeg", "-f", "mp3", url});
        return std::make_unique<subprocess>(std::vector<std::string>{
            "/usr/bin/ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
            "testsrc=size=320x240:rate=25:duration=" + d, "-f", "lavfi", "-i", "sine=frequency=440:duration=" + d,
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-b:v", "300k", "-c:a", "aac", "-f", "mpegts", url});
    };
    auto first = push(8);
    std::vector<std::unique_ptr<subprocess>> procs;
    std::vector<std::unique_ptr<player>> players;
    for (int i = 0; i < 2; ++i) {
        procs.push_back(std::make_unique<subprocess>(std::vector<std::string>{
            peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--buffer", "1", "--channel", "push", "--log-level",
            "warn", turl}));
        const auto line = procs.back()->read_line();
        if (!line) BOOST_FAIL("peer did not start: " << procs.back()->stderr_text());
        players.push_back(std::make_unique<player>());
        players.back()->start(ports_of(*line).second);
    }
    BOOST_TEST_REQUIRE(first->wait(40s).value_or(-1) == 0, "ffmpeg: " << first->stderr_text());
    std::vector<std::size_t> after_first;
    for (auto& p : players) after_first.push_back(p->received);
    auto second = push(6);
    BOOST_TEST_REQUIRE(second->wait(40s).value_or(-1) == 0, "ffmpeg: " << second->stderr_text());
    // The second run reaches the players too (the source reads on, the channel is the same).
    for (std::size_t i = 0; i < players.size(); ++i) {
        BOOST_TEST_CONTEXT("player " << i) {
            BOOST_TEST(after_first[i] > 100'000U);
            BOOST_TEST(eventually([&] { return players[i]->received > after_first[i] + 100'000; }, 20s));
        }
    }
    const auto stats = boost::json::parse(http_get(source_player_port, "/stats"));
    for (auto& p : procs) p->signal(SIGTERM);
    source.signal(SIGTERM);
    for (auto& p : players) p->join();
    // The second run is a new stream: its clock restarts (a TCP broadcaster also reconnected; UDP
    // has no connection, and the pause between the runs is shorter than the stall timeout).
    BOOST_TEST(stats.at("input").at("discontinuities").to_number<double>() >= 1.0, stats);
    if (kind != "udp") BOOST_TEST(stats.at("input").at("reconnects").to_number<double>() >= 1.0, stats);
    BOOST_TEST(stats.at("input").at("container").as_string() == (mp3 ? "mp3" : "mpegts"));
    BOOST_TEST(stats.at("input").at("clock").as_string() == (mp3 ? "audio frames" : "PCR"));
    for (std::size_t i = 0; mp3 && i < players.size(); ++i) {
        BOOST_TEST_CONTEXT("player " << i) {
            // MP3 frames (or the ID3 tag of a run's start) from its first byte; 14 s at 192 kbit/s, most of it.
            const auto& out = players[i]->data;
            BOOST_TEST_REQUIRE(out.size() > 4U);
            const auto b0 = static_cast<unsigned char>(out[0]);
            const auto b1 = static_cast<unsigned char>(out[1]);
            BOOST_TEST(((b0 == 0xFF && (b1 & 0xE0U) == 0xE0U) || out.starts_with("ID3")));
            BOOST_TEST(out.size() > 10U * 192'000 / 8);
        }
    }
    for (std::size_t i = 0; !mp3 && i < players.size(); ++i) {
        BOOST_TEST_CONTEXT("player " << i) {
            const auto& out = players[i]->data;
            BOOST_TEST_REQUIRE(out.size() % 188 == 0U);
            bool aligned = true;
            for (std::size_t o = 0; o < out.size(); o += 188) aligned = aligned && out[o] == 0x47;
            BOOST_TEST(aligned);
            const auto file = dir.path / ("out" + std::to_string(i) + ".ts");
            std::ofstream(file, std::ios::binary) << out;
            // Most of the 14 s of video (joining takes a second or two).
            BOOST_TEST(decoded_frames(file) > 10 * 25);
        }
    }
}

// For the length of a test: this thread (and the processes and threads it starts) in a network
// namespace of its own, whose loopback carries multicast (needs root, as CI runs; no skipping).
struct private_network {
    std::string name = "pixtream-it-" + std::to_string(::getpid());
    int home = -1;
    private_network() {
        const auto sh = [](const std::string& cmd) { return std::system(cmd.c_str()) == 0; };
        BOOST_TEST_REQUIRE(sh("ip netns add " + name + " && ip -n " + name + " link set lo up multicast on && ip -n " +
                              name + " route add 224.0.0.0/4 dev lo"),
                           "cannot make the network namespace " << name << " (the multicast test needs root)");
        home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        const int ns = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        BOOST_TEST_REQUIRE((home >= 0 && ns >= 0 && ::setns(ns, CLONE_NEWNET) == 0), "cannot enter " << name);
        ::close(ns);
    }
    ~private_network() {
        if (home >= 0) {
            ::setns(home, CLONE_NEWNET);
            ::close(home);
        }
        (void)std::system(("ip netns del " + name + " 2>/dev/null").c_str());
    }
    private_network(const private_network&) = delete;
    private_network& operator=(const private_network&) = delete;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(ingest_integration)

BOOST_AUTO_TEST_CASE(ffmpeg_pushing_over_tcp_continues_after_it_reconnects) {
    const auto port = std::to_string(free_port());
    pushed_by_ffmpeg_continues_the_channel("listen", "127.0.0.1:" + port, "tcp://127.0.0.1:" + port);
}

BOOST_AUTO_TEST_CASE(ffmpeg_pushing_udp_continues_after_it_restarts) {
    const auto port = std::to_string(free_port());
    pushed_by_ffmpeg_continues_the_channel("udp", "127.0.0.1:" + port, "udp://127.0.0.1:" + port + "?pkt_size=1316");
}

BOOST_AUTO_TEST_CASE(ogg_dumped_by_netcat_plays_in_real_time) {
    dump_over_tcp_plays_in_real_time("clip.ogg", {"-c:a", "libvorbis", "-q:a", "4", "-f", "ogg"}, "audio/ogg", "granule position");
}

BOOST_AUTO_TEST_CASE(mp3_dumped_by_netcat_plays_in_real_time) {
    dump_over_tcp_plays_in_real_time("clip.mp3", {"-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"}, "audio/mpeg", "audio frames");
}

BOOST_AUTO_TEST_CASE(ffmpeg_as_an_icecast_source_continues_after_it_reconnects) {
    const auto port = std::to_string(free_port());
    pushed_by_ffmpeg_continues_the_channel("icecast", "127.0.0.1:" + port,
                                           "icecast://source:hackme@127.0.0.1:" + port + "/live.mp3", true);
}

BOOST_AUTO_TEST_CASE(ffmpeg_pushing_udp_multicast_continues_after_it_restarts) {
    private_network net;
    const auto port = std::to_string(free_port());
    pushed_by_ffmpeg_continues_the_channel("udp", "239.255.42.42:" + port,
                                           "udp://239.255.42.42:" + port + "?pkt_size=1316&ttl=1");
}

BOOST_AUTO_TEST_SUITE_END()
