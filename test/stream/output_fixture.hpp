#pragma once
// An output_server on 127.0.0.1 with its own io_context thread, blocking players with deadlines, and
// ffmpeg helpers. Test code talks to the server only through run_on_io(), on the server's thread.
#include "pixtream/source/chunker.hpp"
#include "pixtream/stream/output_server.hpp"

#include "subprocess.hpp"
#include "test_files.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

namespace pixtream::stream::test {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace std::chrono_literals;
using byte_vector = std::vector<std::byte>;

inline std::string to_string(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Polls `pred` until it holds or `timeout` passes (a bounded wait on an observable condition).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

struct running_output {
    asio::io_context io;
    std::shared_ptr<output_server> srv;
    std::thread thread;

    explicit running_output(output_config cfg = {}, std::function<std::string()> stats = {}) {
        srv = std::make_shared<output_server>(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
                                              std::move(cfg), std::move(stats));
        asio::co_spawn(io, srv->run(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        thread = std::thread([this] { io.run(); });
    }
    ~running_output() {
        try {
            run_on_io([this] { srv->stop(); });
        } catch (...) {
        }
        io.stop();
        thread.join();
    }
    running_output(const running_output&) = delete;
    running_output& operator=(const running_output&) = delete;

    std::uint16_t port() const { return srv->local_endpoint().port(); }

    // Runs f on the server's thread and returns its result (throws if that takes over 5 s).
    template <class F>
    auto run_on_io(F f) -> decltype(f()) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(io, [&task] { task(); });
        if (result.wait_for(5s) != std::future_status::ready) throw std::runtime_error("io thread stuck");
        return result.get();
    }

    output_stats stats() {
        return run_on_io([this] { return srv->stats(); });
    }
    void write(wire::chunk_ptr c) {
        run_on_io([this, c] { srv->write(c); });
    }
    void write_all(const std::vector<wire::chunk_ptr>& cs, std::size_t from = 0, std::size_t to = SIZE_MAX) {
        run_on_io([&] {
            for (std::size_t i = from; i < std::min(to, cs.size()); ++i) srv->write(cs[i]);
        });
    }
    void gap() {
        run_on_io([this] { srv->gap(); });
    }
    void end_of_stream() {
        run_on_io([this] { srv->end_of_stream(); });
    }
    bool wait_clients(std::size_t n, std::chrono::milliseconds timeout = 5s) {
        return eventually([&] { return stats().clients == n; }, timeout);
    }
};

inline tcp::socket connect_to(asio::io_context& io, std::uint16_t port, int receive_buffer = 0) {
    tcp::socket s(io);
    s.open(tcp::v4());
    if (receive_buffer > 0) s.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

// A player: connects, sends `request` (nothing for a raw client) and reads everything on a thread.
class player {
public:
    explicit player(std::uint16_t port, std::string request = {}) : socket_(connect_to(io_, port)) {
        if (!request.empty()) asio::write(socket_, asio::buffer(request));
        reader_ = std::thread([this] { read_loop(); });
    }
    ~player() {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        reader_.join();
    }
    player(const player&) = delete;
    player& operator=(const player&) = delete;

    std::string data() {
        std::lock_guard lock(mutex_);
        return data_;
    }
    std::size_t size() {
        std::lock_guard lock(mutex_);
        return data_.size();
    }
    bool wait_size(std::size_t n, std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return data_.size() >= n || done_; }) && data_.size() >= n;
    }
    // True once the server closed the connection cleanly (EOF).
    bool wait_eof(std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return done_; }) && eof_;
    }
    bool closed() {
        std::lock_guard lock(mutex_);
        return done_;
    }

private:
    void read_loop() {
        char buf[65536];
        for (;;) {
            boost::system::error_code ec;
            const auto n = socket_.read_some(asio::buffer(buf), ec);
            std::lock_guard lock(mutex_);
            if (ec) {
                done_ = true;
                eof_ = ec == asio::error::eof;
                changed_.notify_all();
                return;
            }
            data_.append(buf, n);
            changed_.notify_all();
        }
    }

    asio::io_context io_;
    tcp::socket socket_;
    std::thread reader_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::string data_;
    bool done_ = false;
    bool eof_ = false;
};

// An HTTP response read off a player's data: status, head and body.
struct http_response {
    int status = 0;
    std::string head;
    std::string body;
};

inline std::optional<http_response> split_response(const std::string& data) {
    const auto end = data.find("\r\n\r\n");
    if (end == std::string::npos || data.size() < 12) return std::nullopt;
    http_response r;
    r.status = std::stoi(data.substr(9, 3));
    r.head = data.substr(0, end + 4);
    r.body = data.substr(end + 4);
    return r;
}

// The payload of a chunked HTTP body (which must end with its last chunk); nullopt if malformed.
inline std::optional<std::string> dechunk(const std::string& body) {
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        const auto eol = body.find("\r\n", pos);
        if (eol == std::string::npos) return std::nullopt;
        const auto size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
        pos = eol + 2;
        if (size == 0) return body.substr(pos) == "\r\n" ? std::optional(out) : std::nullopt;
        if (body.size() < pos + size + 2 || body.compare(pos + size, 2, "\r\n") != 0) return std::nullopt;
        out.append(body, pos, size);
        pos += size + 2;
    }
}

inline wire::chunk_ptr make_chunk(std::uint64_t id, std::uint8_t flags, std::string payload,
                                  std::optional<std::uint64_t> header_ref = std::nullopt) {
    auto c = std::make_shared<wire::chunk>();
    c->id = core::chunk_id{id};
    c->flags = flags;
    if (header_ref) c->header_ref = core::chunk_id{*header_ref};
    c->payload.resize(payload.size());
    std::memcpy(c->payload.data(), payload.data(), payload.size());
    return c;
}

// Chunks as the source would number them: consecutive ids, header_ref = the latest header chunk.
inline std::vector<wire::chunk_ptr> to_wire(std::vector<source::cut_chunk> cuts) {
    std::vector<wire::chunk_ptr> out;
    std::optional<core::chunk_id> header;
    for (std::size_t i = 0; i < cuts.size(); ++i) {
        auto c = std::make_shared<wire::chunk>();
        c->id = core::chunk_id{i};
        c->flags = cuts[i].flags;
        if (cuts[i].refs_header && header) c->header_ref = *header;
        c->payload = std::move(cuts[i].payload);
        if (c->is_header()) header = c->id;
        out.push_back(std::move(c));
    }
    return out;
}

using pixtream::test::files::ffmpeg;
using pixtream::test::files::ffmpeg_exe;
using pixtream::test::files::read_file;
using pixtream::test::files::temp_dir;
using pixtream::test::files::write_file;

// Media generated once per run: H.264/AAC in MPEG-TS and Vorbis in Ogg.
struct media {
    temp_dir dir;
    byte_vector ts, ogg;
    media() {
        const auto gen = [this](const std::string& name, std::vector<std::string> args) {
            return pixtream::test::files::generate_media(dir.path, name, std::move(args));
        };
        ts = gen("av.ts", {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
                           "sine=frequency=440:sample_rate=44100", "-t", "5", "-c:v", "libx264", "-preset",
                           "veryfast", "-g", "25", "-c:a", "aac", "-f", "mpegts"});
        ogg = gen("a.ogg", {"-f", "lavfi", "-i", "anoisesrc=d=5:c=pink:r=44100", "-ac", "2", "-c:a", "libvorbis",
                            "-page_duration", "200000", "-f", "ogg"});
    }
};

inline media& test_media() {
    static media m;
    return m;
}

inline std::vector<wire::chunk_ptr> chunk_media(const byte_vector& input, std::size_t max_bytes) {
    source::chunker c({.max_bytes = max_bytes, .min_bytes = max_bytes / 4});
    std::vector<source::cut_chunk> cuts;
    c.feed(input, core::time_point{}, cuts);
    c.finish(cuts);
    return to_wire(std::move(cuts));
}

}  // namespace pixtream::stream::test
