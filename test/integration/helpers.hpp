#pragma once
// Helpers shared by the integration tests: temporary directories, ffmpeg media, the programs' start-up
// lines, raw-TCP players, HTTP GETs, the output-equals-input check (output_match.hpp) and bounded
// polling.
#include "output_match.hpp"
#include "subprocess.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

namespace pixtream::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The programs under test (each integration test target defines their paths).
inline const std::string tracker_exe = PIXTREAM_TRACKER_EXE;
inline const std::string source_exe = PIXTREAM_SOURCE_EXE;
inline const std::string peer_exe = PIXTREAM_PEER_EXE;

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

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs ffmpeg to completion; its stderr (what -v warning prints) or a failure reason.
inline std::string run_ffmpeg(std::vector<std::string> args, int& status) {
    args.insert(args.begin(), {"/usr/bin/ffmpeg", "-nostdin", "-hide_banner", "-y"});
    subprocess p(args);
    status = p.wait(120s).value_or(-1);
    return p.stderr_text();
}

inline fs::path make_media(const fs::path& dir, const std::string& kind, int seconds) {
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

// A port nobody listens on now on 127.0.0.1 (the kernel's pick, released again).
inline std::uint16_t free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// The URL of a pixtream-tracker started with -p 0, from its start-up line ("... on http://IP:PORT ...").
inline std::string tracker_url(subprocess& tracker) {
    const auto line = tracker.read_line();
    BOOST_TEST_REQUIRE(line.has_value(), "the tracker did not start: " << tracker.stderr_text());
    const auto colon = line->rfind(':');
    return "http://127.0.0.1:" + line->substr(colon + 1, line->find(' ', colon) - colon - 1);
}

// "... peers on IP:PORT players on IP:PORT" -> (peer port, player port).
inline std::pair<std::uint16_t, std::uint16_t> ports_of(const std::string& line) {
    static const std::regex re(R"(peers on [^ ]+:(\d+) players on [^ ]+:(\d+))");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(line, m, re), "unexpected start-up line: " << line);
    return {static_cast<std::uint16_t>(std::stoi(m[1])), static_cast<std::uint16_t>(std::stoi(m[2]))};
}

// A raw-TCP player: connects and reads until EOF (or the deadline) into `data`.
struct player {
    std::string data;  // read it after join(), or through snapshot() while the player runs
    std::atomic<std::size_t> received{0};
    std::string error;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket{io};
    std::thread thread;

    void start(std::uint16_t port) {
        boost::system::error_code ec;
        socket.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
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
                const auto n = socket.read_some(boost::asio::buffer(buf), rec);
                {
                    const std::lock_guard lock(mutex);
                    data.append(buf, n);
                }
                received += n;
                if (rec == boost::asio::error::interrupted) continue;  // a child's SIGCHLD, not the stream
                if (rec) {
                    if (rec != boost::asio::error::eof) error = rec.message();
                    return;
                }
            }
        });
    }
    void join() {
        if (thread.joinable()) thread.join();
    }
    // What arrived so far, while the player runs.
    std::string snapshot() {
        const std::lock_guard lock(mutex);
        return data;
    }
    std::mutex mutex;
    // A test that fails early must not leave the reader blocked: shut the socket, then join.
    ~player() {
        if (thread.joinable()) {
            ::shutdown(socket.native_handle(), SHUT_RDWR);
            thread.join();
        }
    }
};

inline std::string http_get(std::uint16_t port, const std::string& path) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    boost::asio::write(s, boost::asio::buffer("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    std::string reply;
    boost::system::error_code ec;
    char buf[4096];
    while (!ec) reply.append(buf, s.read_some(boost::asio::buffer(buf), ec));
    const auto body = reply.find("\r\n\r\n");
    return body == std::string::npos ? "" : reply.substr(body + 4);
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

}  // namespace pixtream::test
