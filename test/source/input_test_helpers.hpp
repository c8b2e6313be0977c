#pragma once
// Helpers for the input reader tests: an event recorder, a bounded run, temporary files, a child process
// writing into a pipe, loopback listeners, and an Ogg page checker.
#include "pixtream/source/input.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace pixtream::source::test {

namespace asio = boost::asio;
using asio::ip::tcp;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// co_spawn completion for test coroutines: an exception fails the test through io.run_for().
inline void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

// Records a reader's events. `summary` has one letter per event, consecutive data events merged:
// d(ata), x (disconnected), r(econnected), e(nded), f(ailed).
struct recorder {
    std::string summary;
    std::string bytes;
    std::vector<std::string> messages;  // of the non-data events, in order
    std::size_t max_piece = 0;
    std::size_t data_events = 0;
    std::size_t failures = 0;  // failed + disconnected
    std::chrono::steady_clock::time_point last_event_at;

    input_reader* reader = nullptr;  // stopped when one of the conditions below holds
    std::size_t stop_after_bytes = 0;
    char stop_on = 0;
    std::function<void(const input_event&, const recorder&)> on_event;

    static char letter(input_event_kind k) {
        switch (k) {
        case input_event_kind::data: return 'd';
        case input_event_kind::disconnected: return 'x';
        case input_event_kind::reconnected: return 'r';
        case input_event_kind::ended: return 'e';
        case input_event_kind::failed: return 'f';
        }
        return '?';
    }

    void on(input_event ev) {
        last_event_at = std::chrono::steady_clock::now();
        const char c = letter(ev.kind);
        if (c != 'd' || summary.empty() || summary.back() != 'd') summary += c;
        if (c == 'd') {
            bytes.append(reinterpret_cast<const char*>(ev.bytes.data()), ev.bytes.size());
            max_piece = std::max(max_piece, ev.bytes.size());
            ++data_events;
        } else {
            messages.push_back(ev.message);
        }
        if (c == 'f' || c == 'x') ++failures;
        if (on_event) on_event(ev, *this);
        if (reader && ((stop_after_bytes > 0 && bytes.size() >= stop_after_bytes) || (stop_on != 0 && c == stop_on)))
            reader->stop();
    }

    auto sink() {
        return [this](input_event ev) { on(std::move(ev)); };
    }
};

// Runs reader.run() on `io` for at most `bound`; false (after stopping the reader) if it did not finish.
inline bool run_reader(asio::io_context& io, input_reader& reader,
                       std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    bool done = false;
    asio::co_spawn(io, reader.run(), [&done, &io](std::exception_ptr e) {
        done = true;
        io.stop();
        if (e) std::rethrow_exception(e);
    });
    io.run_for(bound);
    if (done) return true;
    reader.stop();
    io.restart();
    io.run_for(std::chrono::seconds(2));
    return false;
}

inline std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        char pattern[] = "/tmp/pixtream-input-XXXXXX";
        if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const noexcept { return path_; }
    std::string write(const std::string& name, const std::string& content) const {
        const auto p = path_ + "/" + name;
        std::ofstream(p, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
        return p;
    }

private:
    std::string path_;
};

inline tcp::acceptor listen_on(asio::io_context& io, std::uint16_t port) {
    tcp::acceptor a(io);
    const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
    a.open(at.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(at);
    a.listen();
    return a;
}

// A port with nothing listening on it (bound once, then released).
inline std::uint16_t dead_port() {
    asio::io_context io;
    return listen_on(io, 0).local_endpoint().port();
}

inline asio::awaitable<void> write_all_and_close(asio::posix::stream_descriptor d, std::string data) {
    co_await asio::async_write(d, asio::buffer(data), use_tuple);
}

// A child process whose standard output is a pipe we read (the `ffmpeg ... | pixtream-source` case).
struct piped_child {
    pid_t pid = -1;
    int read_fd = -1;
    bool exited = false;

    piped_child() = default;
    piped_child(const piped_child&) = delete;
    piped_child& operator=(const piped_child&) = delete;
    ~piped_child() {
        if (pid > 0 && !exited) {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
        if (read_fd >= 0) ::close(read_fd);
    }

    // The exit status, or nullopt if the child is still running after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                exited = true;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            ::usleep(5000);  // polling an exit status; not synchronisation
        }
    }
};

inline std::unique_ptr<piped_child> spawn_to_pipe(std::vector<std::string> argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    auto child = std::make_unique<piped_child>();
    const int rc = ::posix_spawn(&child->pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    child->read_fd = fds[0];
    if (rc != 0) {
        child->pid = -1;
        throw std::runtime_error("cannot start " + argv[0]);
    }
    return child;
}

inline std::optional<std::string> find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    std::size_t at = 0;
    while (at <= dirs.size()) {
        auto end = dirs.find(':', at);
        if (end == std::string::npos) end = dirs.size();
        const auto candidate = dirs.substr(at, end - at) + "/" + name;
        if (end > at && ::access(candidate.c_str(), X_OK) == 0) return candidate;
        at = end + 1;
    }
    return std::nullopt;
}

struct ogg_check {
    std::string error;  // empty when the bytes are a sequence of whole, valid Ogg pages
    std::size_t pages = 0;
    std::uint64_t last_granule = 0;
};

// Walks the Ogg pages of one logical stream: capture pattern, version, CRC, sequence numbers, the
// beginning-of-stream flag on the first page and end-of-stream on the last, nothing left over.
inline ogg_check check_ogg(const std::string& s) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t r = i << 24;
            for (int k = 0; k < 8; ++k) r = (r & 0x80000000U) ? (r << 1) ^ 0x04c11db7U : r << 1;
            t[i] = r;
        }
        return t;
    }();
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
    const auto le = [&](std::size_t i, int n) {
        std::uint64_t v = 0;
        for (int k = n - 1; k >= 0; --k) v = (v << 8) | byte(i + static_cast<std::size_t>(k));
        return v;
    };
    ogg_check out;
    std::size_t at = 0;
    std::uint64_t serial = 0;
    std::uint8_t last_flags = 0;
    while (at < s.size()) {
        const auto where = " (page " + std::to_string(out.pages) + " at byte " + std::to_string(at) + ")";
        if (s.size() - at < 27 || s.compare(at, 4, "OggS") != 0 || byte(at + 4) != 0) {
            out.error = "no Ogg page header" + where;
            return out;
        }
        const std::size_t segments = byte(at + 26);
        if (s.size() - at < 27 + segments) {
            out.error = "truncated segment table" + where;
            return out;
        }
        std::size_t body = 0;
        for (std::size_t k = 0; k < segments; ++k) body += byte(at + 27 + k);
        const std::size_t size = 27 + segments + body;
        if (s.size() - at < size) {
            out.error = "truncated page" + where;
            return out;
        }
        std::uint32_t crc = 0;
        for (std::size_t k = 0; k < size; ++k) {
            const std::uint8_t b = (k >= 22 && k < 26) ? 0 : byte(at + k);
            crc = (crc << 8) ^ table[((crc >> 24) ^ b) & 0xff];
        }
        if (crc != le(at + 22, 4)) {
            out.error = "bad CRC" + where;
            return out;
        }
        const auto flags = byte(at + 5);
        if (out.pages == 0) {
            serial = le(at + 14, 4);
            if (!(flags & 0x02)) out.error = "first page lacks the beginning-of-stream flag";
        } else if (le(at + 14, 4) != serial) {
            out.error = "serial number changes" + where;
        }
        if (le(at + 18, 4) != out.pages) out.error = "page sequence number out of order" + where;
        if (!out.error.empty()) return out;
        const auto granule = le(at + 6, 8);
        if (granule != ~std::uint64_t{0}) out.last_granule = granule;
        last_flags = flags;
        ++out.pages;
        at += size;
    }
    if (out.pages == 0) out.error = "no pages";
    else if (!(last_flags & 0x04)) out.error = "last page lacks the end-of-stream flag";
    return out;
}

}  // namespace pixtream::source::test
