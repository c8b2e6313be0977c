// swarmsim --processes (see process_swarm.hpp).
//
// Everything runs on one single-threaded io_context: the children's output pipes, the source's stdin,
// the players, the /stats requests, SIGCHLD (reaping) and SIGINT/SIGTERM. Shutting down, on every
// path (end of the run, a failure, a signal): SIGTERM to every child, SIGKILL after a grace period,
// each reaped on SIGCHLD; child_process's destructor SIGKILLs and reaps anything left.
#include "process_swarm.hpp"

#include "child_process.hpp"
#include "stream_check.hpp"

#include "pixtream/core/time.hpp"
#include "pixtream/net/net.hpp"
#include "pixtream/wire/limits.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <fmt/format.h>

#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <regex>

namespace pixtream::swarmsim {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto tracker_ready_timeout = core::seconds(10);
constexpr auto source_ready_timeout = core::seconds(10);
constexpr auto peer_ready_timeout = core::seconds(25);  // includes the peer's --wait-channel
constexpr auto stats_timeout = core::seconds(1);
constexpr auto term_grace = core::seconds(3);   // SIGTERM, then SIGKILL after this
constexpr auto kill_grace = core::seconds(5);   // SIGKILL always works: this only bounds a wait
constexpr auto feed_tick = core::milliseconds(20);
constexpr std::size_t max_http_reply = 1 << 20;
const std::string channel_name = "swarmsim";

// ---------------------------------------------------------------------------------------------
// HTTP GET on 127.0.0.1 (the tracker's /channels, the stream ports' /stats): the body of a 200 reply.

std::optional<std::size_t> content_length(std::string head) {
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto at = head.find("\r\ncontent-length:");
    if (at == std::string::npos) return std::nullopt;
    try {
        return static_cast<std::size_t>(std::stoul(head.substr(at + 17)));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

asio::awaitable<std::optional<std::string>> http_exchange(std::uint16_t port, std::string path) {
    tcp::socket s(co_await asio::this_coro::executor);
    auto [cec] = co_await s.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), asio::as_tuple(asio::use_awaitable));
    if (cec) co_return std::nullopt;
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    auto [wec, written] = co_await asio::async_write(s, asio::buffer(request), asio::as_tuple(asio::use_awaitable));
    if (wec) co_return std::nullopt;
    std::string reply;
    std::array<char, 4096> buf{};
    std::size_t body_at = std::string::npos;
    std::optional<std::size_t> length;
    for (;;) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        reply.append(buf.data(), n);
        if (reply.size() > max_http_reply) co_return std::nullopt;
        if (body_at == std::string::npos) {
            const auto end = reply.find("\r\n\r\n");
            if (end != std::string::npos) {
                body_at = end + 4;
                length = content_length(reply.substr(0, end + 2));
            }
        }
        if (length && reply.size() >= body_at + *length) break;
        if (rec) break;
    }
    if (body_at == std::string::npos || reply.compare(9, 4, "200 ") != 0) co_return std::nullopt;
    if (length && reply.size() < body_at + *length) co_return std::nullopt;  // cut short
    co_return reply.substr(body_at, length ? *length : std::string::npos);
}

asio::awaitable<std::optional<std::string>> http_get(std::uint16_t port, std::string path, core::duration timeout) {
    asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
    auto r = co_await (http_exchange(port, std::move(path)) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 0) co_return std::get<0>(std::move(r));
    co_return std::nullopt;
}

// Runs `tasks` concurrently; returns when all have finished (each bounds its own time).
asio::awaitable<void> run_all(std::vector<asio::awaitable<void>> tasks) {
    if (tasks.empty()) co_return;
    struct state {
        std::size_t left;
        asio::steady_timer done;
    };
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<state>(state{tasks.size(), asio::steady_timer(ex, core::time_point::max())});
    for (auto& t : tasks) {
        asio::co_spawn(ex, std::move(t), [st, log = net::log_errors("swarmsim: task")](std::exception_ptr e) {
            log(e);
            if (--st->left == 0) st->done.cancel();
        });
    }
    while (st->left > 0) co_await st->done.async_wait(asio::as_tuple(asio::use_awaitable));
}

// ---------------------------------------------------------------------------------------------

// A peer's GET /stats (docs/architecture.md, "pixtream-peer /stats").
struct peer_sample {
    double continuity = 1;
    std::optional<double> startup_s;
    double lag_p50 = 0;
    double lag_p95 = 0;
    double lag_max = 0;
    std::uint64_t played = 0;
    std::uint64_t skipped = 0;
    std::uint64_t late = 0;
    std::uint64_t neighbours = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t payload_in = 0;
    std::uint64_t payload_out = 0;
    std::uint64_t bad_chunks = 0;
    std::uint64_t duplicate_chunks = 0;
    std::uint64_t rejects_sent = 0;
    std::uint64_t protocol_errors = 0;
    std::uint64_t bans = 0;
    std::uint64_t dropped_slow = 0;
};

const boost::json::value* field(const boost::json::object& o, std::string_view path) {
    const boost::json::value* v = nullptr;
    const boost::json::object* at = &o;
    for (std::size_t start = 0;;) {
        const auto dot = path.find('.', start);
        v = at->if_contains(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
        if (!v || dot == std::string_view::npos) return v;
        if (!v->is_object()) return nullptr;
        at = &v->get_object();
        start = dot + 1;
    }
}

std::optional<double> number(const boost::json::object& o, std::string_view path) {
    const auto* v = field(o, path);
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
}

std::uint64_t counter(const boost::json::object& o, std::string_view path) {
    const auto v = number(o, path);
    return v && *v > 0 ? static_cast<std::uint64_t>(std::llround(*v)) : 0;
}

std::optional<boost::json::object> parse_object(const std::string& body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.get_object());
}

peer_sample to_sample(const boost::json::object& o) {
    peer_sample s;
    s.continuity = number(o, "continuity").value_or(1.0);
    s.startup_s = number(o, "startup_s");
    s.lag_p50 = number(o, "lag_s.p50").value_or(0);
    s.lag_p95 = number(o, "lag_s.p95").value_or(0);
    s.lag_max = number(o, "lag_s.max").value_or(0);
    s.played = counter(o, "chunks_played");
    s.skipped = counter(o, "chunks_skipped");
    s.late = counter(o, "chunks_late");
    s.neighbours = counter(o, "neighbours");
    s.bytes_in = counter(o, "bytes_in");
    s.bytes_out = counter(o, "bytes_out");
    s.payload_in = counter(o, "payload_bytes_in");
    s.payload_out = counter(o, "payload_bytes_out");
    s.bad_chunks = counter(o, "bad_chunks");
    s.duplicate_chunks = counter(o, "duplicate_chunks");
    s.rejects_sent = counter(o, "rejects_sent");
    s.protocol_errors = counter(o, "protocol_errors");
    s.bans = counter(o, "bans");
    s.dropped_slow = counter(o, "players_dropped_slow");
    return s;
}

// A raw-TCP player reading one peer's output (it sends nothing, so it gets the raw stream).
struct player {
    explicit player(const asio::any_io_executor& ex) : socket(ex) {}
    tcp::socket socket;
    output_check check;
    bool closing = false;  // swarmsim closed it (the peer left or the run ended)
    bool ended = false;
    int http_replies = 0;     // connections answered with HTTP instead of the raw stream
    std::string http_status;  // the last such reply's status line
    std::string error;     // how it ended, if not by swarmsim
};

// One viewer over its life in the run.
struct proc_peer {
    int index = 0;
    double cap_bps = 0;
    double start_s = 0;
    double leave_s = -1;    // churn: when it is killed (< 0: stays to the end)
    bool launched = false;  // process started
    bool running = false;   // reported its ports; its player is connected
    bool leaving = false;
    bool left = false;
    core::time_point launched_at{};
    double online_s = 0;
    std::shared_ptr<child_process> proc;
    std::uint16_t stream_port = 0;
    std::shared_ptr<player> out;
    std::optional<peer_sample> last;   // latest /stats
    std::optional<peer_sample> final;  // /stats just before it was stopped
    std::uint64_t sampled_bytes_out = 0;
};

// A temporary directory (the source's key file), removed at the end.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "swarmsim-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temporary directory: " + std::string(std::strerror(errno)));
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

bool is_ports_line(const std::string& line) {
    static const std::regex re(R"(peers on \S+:\d+ players on \S+:\d+)");
    return std::regex_search(line, re);
}

// "... players on IP:PORT" -> PORT.
std::uint16_t player_port_of(const std::string& line) {
    static const std::regex re(R"(players on \S+:(\d+))");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return 0;
    return static_cast<std::uint16_t>(std::stoul(m[1]));
}

// Lag percentiles over all peers. /stats gives each peer's p50, p95 and max of its lags, not the
// samples. A peer plays every chunk at its timestamp plus a lag fixed when it starts playback, so its
// lags hardly vary: each peer's distribution is modelled by the quantile function equal to p50 up to
// q = 0.5, rising linearly to p95 at q = 0.95 and to max at q = 1. The pool takes 100 points of each
// peer's model (q = 0.005, 0.015, ...), weighted by the chunks the peer played, and reports the
// weighted p50 and p95 of the pool; max is exact (the largest of the peers' maxima).
boost::json::object pooled_lag(const std::vector<std::pair<peer_sample, double>>& peers) {
    std::vector<std::pair<double, double>> pool;  // (lag, weight)
    double lag_max = 0;
    for (const auto& [s, weight] : peers) {
        lag_max = std::max(lag_max, s.lag_max);
        constexpr int points = 100;
        for (int k = 0; k < points; ++k) {
            const double q = (k + 0.5) / points;
            const double lag = q <= 0.5    ? s.lag_p50
                               : q <= 0.95 ? s.lag_p50 + (s.lag_p95 - s.lag_p50) * (q - 0.5) / 0.45
                                           : s.lag_p95 + (s.lag_max - s.lag_p95) * (q - 0.95) / 0.05;
            pool.emplace_back(lag, weight / points);
        }
    }
    std::sort(pool.begin(), pool.end());
    const double total = std::accumulate(pool.begin(), pool.end(), 0.0, [](double a, const auto& p) { return a + p.second; });
    auto at = [&](double q) {
        double sum = 0;
        for (const auto& [lag, w] : pool) {
            sum += w;
            if (sum >= q * total) return lag;
        }
        return pool.empty() ? 0.0 : pool.back().first;
    };
    return boost::json::object{{"p50", at(0.5)}, {"p95", at(0.95)}, {"max", lag_max}};
}

// ---------------------------------------------------------------------------------------------

class process_swarm {
public:
    process_swarm(asio::io_context& io, options opt)
        : io_(io),
          opt_(std::move(opt)),
          rng_(opt_.seed),
          fed_(std::max<std::size_t>(16U << 20U, static_cast<std::size_t>(opt_.rate_bps / 8 * (opt_.buffer + 60)))),
          sigchld_(io, SIGCHLD),
          interrupt_(io, SIGINT, SIGTERM),
          children_changed_(io),
          sample_timer_(io) {}

    process_run run();

private:
    static asio::awaitable<void> main_task(process_swarm* self);
    static asio::awaitable<void> start_core(process_swarm* self);
    static asio::awaitable<void> drive(process_swarm* self);
    static asio::awaitable<void> launch_peer(process_swarm* self, proc_peer* p);
    static asio::awaitable<void> churn_out(proc_peer* p);
    static asio::awaitable<void> fetch_peer(proc_peer* p);
    static asio::awaitable<void> fetch_source(process_swarm* self);
    static asio::awaitable<void> collect_final(process_swarm* self);
    static asio::awaitable<void> shut_down(process_swarm* self);
    static asio::awaitable<void> wait_children(process_swarm* self, core::duration limit);
    static asio::awaitable<void> feed(process_swarm* self);
    static asio::awaitable<void> sample_loop(process_swarm* self);
    static asio::awaitable<void> play(process_swarm* self, std::shared_ptr<player> pl, std::uint16_t port);
    static asio::awaitable<void> reap_loop(process_swarm* self);
    static asio::awaitable<void> interrupt_loop(process_swarm* self);

    std::shared_ptr<child_process> spawn(std::string name, std::vector<std::string> argv, bool stdin_pipe,
                                         std::function<bool(const std::string&)> ready);
    std::string start_failure(const child_process& c, core::duration timeout);
    void fail(std::string why);
    void record_sample();
    double source_upload_bytes(bool& estimated) const;
    std::uint64_t stream_bytes() const;
    boost::json::object report() const;
    double elapsed() const { return core::to_seconds(core::clock::now() - t0_); }

    asio::io_context& io_;
    options opt_;
    std::mt19937_64 rng_;
    temp_dir dir_;
    fed_stream fed_;
    asio::signal_set sigchld_;
    asio::signal_set interrupt_;
    asio::steady_timer children_changed_;  // cancelled whenever a child is reaped
    asio::steady_timer sample_timer_;
    std::vector<std::shared_ptr<child_process>> children_;  // not reaped yet
    std::shared_ptr<child_process> tracker_;
    std::shared_ptr<child_process> source_;
    std::uint16_t tracker_port_ = 0;
    std::uint16_t source_stream_port_ = 0;
    std::string tracker_url_;
    std::vector<std::unique_ptr<proc_peer>> peers_;
    std::optional<boost::json::object> source_stats_;
    core::time_point t0_{};
    bool clock_started_ = false;
    bool stopping_ = false;  // no new children; waits give up
    bool done_ = false;      // the feeder and the sampler stop
    std::string error_;
    int interrupted_ = 0;
    std::uint64_t processes_started_ = 0;
    double last_sample_t_ = 0;
    std::vector<series_point> series_;
};

void process_swarm::fail(std::string why) {
    if (error_.empty() && interrupted_ == 0) error_ = std::move(why);
    stopping_ = true;
    for (auto& c : children_) c->wake();
}

std::shared_ptr<child_process> process_swarm::spawn(std::string name, std::vector<std::string> argv, bool stdin_pipe,
                                                    std::function<bool(const std::string&)> ready) {
    auto c = std::make_shared<child_process>(io_.get_executor(), std::move(name), argv, stdin_pipe, std::move(ready));
    ++processes_started_;
    children_.push_back(c);
    asio::co_spawn(io_, child_process::drain(c), net::log_errors("swarmsim: child output"));
    return c;
}

std::string process_swarm::start_failure(const child_process& c, core::duration timeout) {
    auto tail = c.output_tail();
    if (tail.empty()) tail = "(nothing)\n";
    if (c.exited()) return fmt::format("{} {} before it was ready; its output:\n{}", c.name(), c.describe_exit(), tail);
    if (c.output_ended()) return fmt::format("{} closed its output before it was ready; its output:\n{}", c.name(), tail);
    return fmt::format("{} did not report its ports within {:.0f} s; its output:\n{}", c.name(), core::to_seconds(timeout), tail);
}

// ---------------------------------------------------------------------------------------------

asio::awaitable<void> process_swarm::reap_loop(process_swarm* self) {
    for (;;) {
        auto [ec, sig] = co_await self->sigchld_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        auto& cs = self->children_;
        for (auto it = cs.begin(); it != cs.end();) {
            auto c = *it;
            if (!c->reap()) {
                ++it;
                continue;
            }
            it = cs.erase(it);
            if (!c->stopping()) {
                self->fail(fmt::format("{} {} {}; its last output:\n{}", c->name(), c->describe_exit(),
                                       c->ready() ? "unexpectedly" : "before it was ready",
                                       c->output_tail().empty() ? "(nothing)\n" : c->output_tail()));
            }
        }
        self->children_changed_.cancel();
    }
}

asio::awaitable<void> process_swarm::interrupt_loop(process_swarm* self) {
    for (;;) {
        auto [ec, sig] = co_await self->interrupt_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        if (self->interrupted_ == 0) {
            self->interrupted_ = sig;
            std::cerr << fmt::format("\nswarmsim: {}: stopping every child process\n", sig == SIGINT ? "interrupted" : "terminated");
        }
        self->fail({});
    }
}

asio::awaitable<void> process_swarm::main_task(process_swarm* self) {
    try {
        co_await start_core(self);
        if (!self->stopping_) co_await drive(self);
        if (!self->stopping_) co_await collect_final(self);
    } catch (const std::exception& e) {
        self->fail(e.what());  // a child that cannot be started, or a bug
    }
    co_await shut_down(self);
}

// The tracker and the source; then the clock starts, with the feeder and the sampler.
asio::awaitable<void> process_swarm::start_core(process_swarm* self) {
    const auto& o = self->opt_;
    self->tracker_ = self->spawn("pixtream-tracker",
                                 {o.tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "5", "--log-level", "warn"}, false,
                                 [](const std::string& l) { return l.find("listening on http://") != std::string::npos; });
    const auto tline = co_await self->tracker_->wait_ready(tracker_ready_timeout, &self->stopping_);
    if (self->stopping_) co_return;
    if (!tline) {
        self->fail(self->start_failure(*self->tracker_, tracker_ready_timeout));
        co_return;
    }
    static const std::regex url_re(R"(listening on (http://[0-9.]+:(\d+)))");
    std::smatch m;
    if (!std::regex_search(*tline, m, url_re)) {
        self->fail("unexpected start-up line from pixtream-tracker: " + *tline);
        co_return;
    }
    self->tracker_url_ = m[1];
    self->tracker_port_ = static_cast<std::uint16_t>(std::stoul(m[2]));

    // Chunks as in the in-process mode: cut by time (--chunk-seconds); the byte bound only above that.
    const double chunk = o.rate_bps / 8 * o.chunk_seconds;
    const auto chunk_bytes = std::clamp<std::size_t>(static_cast<std::size_t>(chunk * 1.5), 64 * 1024, wire::max_chunk_payload);
    self->source_ = self->spawn(
        "pixtream-source",
        {o.source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--key", (self->dir_.path / "channel.key").string(),
         "--channel", channel_name, "--upload-limit", fmt::format("{:.0f}", o.source_cap_bps / 8), "--max-peers",
         std::to_string(std::max<std::size_t>(o.max_peers, 16)), "--chunk-seconds", fmt::format("{}", o.chunk_seconds),
         "--chunk-bytes", std::to_string(chunk_bytes), "--linger", "0", "--log-level", "warn", self->tracker_url_, "stdin", "-"},
        true, is_ports_line);
    const auto sline = co_await self->source_->wait_ready(source_ready_timeout, &self->stopping_);
    if (self->stopping_) co_return;
    if (!sline) {
        self->fail(self->start_failure(*self->source_, source_ready_timeout));
        co_return;
    }
    self->source_stream_port_ = player_port_of(*sline);

    // Peers look the channel up by name: start the clock once the tracker lists it (the source
    // announces right after its start-up line). A bounded poll on that observable condition.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto give_up = core::clock::now() + core::seconds(10);
    for (;;) {
        const auto body = co_await http_get(self->tracker_port_, "/channels", stats_timeout);
        if (self->stopping_) co_return;
        if (body && body->find("\"" + channel_name + "\"") != std::string::npos) break;
        if (core::clock::now() >= give_up) {
            self->fail("the tracker did not list the source's channel within 10 s; pixtream-source's output:\n" +
                       self->source_->output_tail());
            co_return;
        }
        timer.expires_after(core::milliseconds(50));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    self->t0_ = core::clock::now();
    self->clock_started_ = true;
    asio::co_spawn(self->io_, feed(self), net::log_errors("swarmsim: feeder"));
    asio::co_spawn(self->io_, sample_loop(self), net::log_errors("swarmsim: sampler"));
}

// The source's input: pseudo-random bytes (or --input, looped) at --rate, written every 20 ms, kept in
// fed_ first.
asio::awaitable<void> process_swarm::feed(process_swarm* self) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::mt19937_64 gen(self->opt_.seed * 7919);
    std::vector<std::byte> block;
    std::uint64_t sent = 0;
    const auto& file = self->opt_.input;
    auto next = self->t0_;
    while (!self->done_) {
        const double t = core::to_seconds(core::clock::now() - self->t0_);
        const auto due = static_cast<std::uint64_t>(self->opt_.rate_bps / 8 * t);
        if (due > sent) {
            block.resize(static_cast<std::size_t>(std::min<std::uint64_t>(due - sent, 1U << 20U)));
            for (std::size_t i = 0; i < block.size() && !file.empty(); ++i) block[i] = file[(sent + i) % file.size()];
            for (std::size_t i = 0; i < block.size() && file.empty(); i += 8) {
                const auto v = gen();
                for (std::size_t k = 0; k < 8 && i + k < block.size(); ++k) {
                    // No 0x47 (MPEG-TS sync) and no 'O' ("OggS"): the source's chunker must see raw bytes.
                    auto b = static_cast<std::uint8_t>(v >> (8 * k));
                    if (b == 0x47 || b == 'O') b = static_cast<std::uint8_t>(b ^ 0x80U);
                    block[i + k] = static_cast<std::byte>(b);
                }
            }
            self->fed_.append(block);
            sent += block.size();
            auto [ec, n] = co_await asio::async_write(self->source_->stdin_pipe(), asio::buffer(block),
                                                      asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (!self->done_) self->fail("cannot feed pixtream-source's stdin: " + ec.message());
                co_return;
            }
        }
        next = std::max(next + feed_tick, core::clock::now());
        timer.expires_at(next);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

// Joins and churn, as in the in-process mode.
asio::awaitable<void> process_swarm::drive(process_swarm* self) {
    const auto& o = self->opt_;
    std::uniform_real_distribution<double> cap(o.cap_min_bps, o.cap_max_bps);
    std::uniform_real_distribution<double> join(0, o.join_window);
    std::uniform_real_distribution<double> leave(o.join_window + o.buffer, std::max(o.join_window + o.buffer, o.duration * 0.8));
    for (int i = 0; i < o.peers; ++i) {
        auto p = std::make_unique<proc_peer>();
        p->index = i;
        p->cap_bps = cap(self->rng_);
        p->start_s = join(self->rng_);
        self->peers_.push_back(std::move(p));
    }
    // Churn: that fraction of the peers is SIGKILLed at a random time and replaced at once.
    std::vector<std::size_t> order(self->peers_.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), self->rng_);
    for (std::size_t k = 0; k < static_cast<std::size_t>(std::lround(o.churn * o.peers)); ++k) {
        self->peers_[order[k]]->leave_s = leave(self->rng_);
    }

    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!self->stopping_ && self->elapsed() < o.duration) {
        const double t = self->elapsed();
        for (std::size_t i = 0; i < self->peers_.size(); ++i) {
            auto* p = self->peers_[i].get();
            if (!p->launched && p->start_s <= t) {
                p->launched = true;
                asio::co_spawn(self->io_, launch_peer(self, p), net::log_errors("swarmsim: peer start"));
            }
            if (p->running && !p->leaving && p->leave_s >= 0 && p->leave_s <= t) {
                p->leaving = true;
                asio::co_spawn(self->io_, churn_out(p), net::log_errors("swarmsim: churn"));
                auto fresh = std::make_unique<proc_peer>();
                fresh->index = static_cast<int>(self->peers_.size());
                fresh->cap_bps = p->cap_bps;
                fresh->start_s = t;
                self->peers_.push_back(std::move(fresh));
            }
        }
        timer.expires_after(core::milliseconds(250));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> process_swarm::launch_peer(process_swarm* self, proc_peer* p) {
    if (self->stopping_) co_return;
    const auto& o = self->opt_;
    p->launched_at = core::clock::now();
    try {
        p->proc = self->spawn(fmt::format("pixtream-peer #{}", p->index),
                              {o.peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--channel", channel_name, "--upload-limit",
                               fmt::format("{:.0f}", p->cap_bps / 8), "--upload-backlog", fmt::format("{}", o.upload_backlog),
                               "--buffer", fmt::format("{}", o.buffer), "--max-peers",
                               std::to_string(o.max_peers), "--wait-channel", "15", "--linger", "0", "--log-level", "warn",
                               self->tracker_url_},
                              false, is_ports_line);
    } catch (const std::exception& e) {
        self->fail(e.what());
        co_return;
    }
    const auto line = co_await p->proc->wait_ready(peer_ready_timeout, &self->stopping_);
    if (self->stopping_) co_return;
    if (!line || player_port_of(*line) == 0) {
        self->fail(self->start_failure(*p->proc, peer_ready_timeout));
        co_return;
    }
    p->stream_port = player_port_of(*line);
    p->running = true;
    p->out = std::make_shared<player>(self->io_.get_executor());
    asio::co_spawn(self->io_, play(self, p->out, p->stream_port), net::log_errors("swarmsim: player"));
}

// Reads a peer's output (from its start to its end) and checks it against the fed stream.
//
// A raw player sends nothing, yet now and then (a few in 200 peers started at once on two cores) a
// peer's stream output takes it for an HTTP client and, 5 s later, answers "HTTP/1.1 408 Request
// Timeout": its wait for the client's first bytes woke up with nothing to read. Like a real player,
// this one then connects again (at most max_player_retries times); the replies are counted in the
// report's diagnostics (player_http_replies), not checked as stream bytes.
asio::awaitable<void> process_swarm::play(process_swarm* self, std::shared_ptr<player> pl, std::uint16_t port) {
    constexpr int max_player_retries = 3;
    std::vector<std::byte> buf(64 * 1024);
    for (int attempt = 0; !pl->closing; ++attempt) {
        auto [cec] = co_await pl->socket.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port),
                                                      asio::as_tuple(asio::use_awaitable));
        if (cec) {
            if (!pl->closing) pl->error = "connect: " + cec.message();
            break;
        }
        bool first = true;
        bool http = false;
        for (;;) {
            auto [ec, n] = co_await pl->socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            const std::span<const std::byte> got(buf.data(), n);
            if (first && n > 0) {
                first = false;
                static constexpr std::string_view prefix = "HTTP/1.";
                http = n >= prefix.size() && std::equal(prefix.begin(), prefix.end(), got.begin(),
                                                         [](char a, std::byte b) { return static_cast<std::byte>(a) == b; });
                if (http) {
                    ++pl->http_replies;
                    const std::string text(reinterpret_cast<const char*>(got.data()), std::min<std::size_t>(n, 64));
                    pl->http_status = text.substr(0, text.find('\r'));
                }
            }
            if (!http) pl->check.feed(self->fed_, got);
            if (ec) {
                if (!pl->closing && !http) pl->error = ec == asio::error::eof ? "the peer ended the stream" : ec.message();
                break;
            }
        }
        boost::system::error_code ignored;
        pl->socket.close(ignored);
        if (!http) break;
        if (attempt + 1 > max_player_retries) {
            pl->error = "the peer answered every connection with " + pl->http_status;
            break;
        }
    }
    pl->ended = true;
}

void close_player(proc_peer& p) {
    if (!p.out) return;
    p.out->closing = true;
    boost::system::error_code ec;
    p.out->socket.close(ec);
}

asio::awaitable<void> process_swarm::fetch_peer(proc_peer* p) {
    const auto body = co_await http_get(p->stream_port, "/stats", stats_timeout);
    if (!body) co_return;
    if (const auto o = parse_object(*body)) p->last = to_sample(*o);
}

asio::awaitable<void> process_swarm::fetch_source(process_swarm* self) {
    const auto body = co_await http_get(self->source_stream_port_, "/stats", stats_timeout);
    if (!body) co_return;
    if (auto o = parse_object(*body)) self->source_stats_ = std::move(*o);
}

// Churn: the peer's last /stats, then SIGKILL (no goodbye to anyone), its player closed.
asio::awaitable<void> process_swarm::churn_out(proc_peer* p) {
    co_await fetch_peer(p);
    p->final = p->last;
    p->online_s = core::to_seconds(core::clock::now() - p->launched_at);
    p->proc->signal(SIGKILL);
    p->running = false;
    p->left = true;
    close_player(*p);
}

// The end of the run: every running peer's /stats and the source's, at once.
asio::awaitable<void> process_swarm::collect_final(process_swarm* self) {
    // A peer reports its ports well within a second; one still silent after 10 s failed to start
    // (a run shorter than peer_ready_timeout ends before its own timeout could say so).
    for (auto& p : self->peers_) {
        if (p->launched && !p->running && !p->left && p->proc && core::clock::now() - p->launched_at > core::seconds(10)) {
            self->fail(self->start_failure(*p->proc, core::clock::now() - p->launched_at));
            co_return;
        }
    }
    std::vector<asio::awaitable<void>> tasks;
    std::vector<proc_peer*> now_running;
    for (auto& p : self->peers_) {
        if (!p->running || p->leaving) continue;
        now_running.push_back(p.get());
        tasks.push_back(fetch_peer(p.get()));
    }
    tasks.push_back(fetch_source(self));
    co_await run_all(std::move(tasks));
    const auto now = core::clock::now();
    for (auto* p : now_running) {
        p->final = p->last;
        p->online_s = core::to_seconds(now - p->launched_at);
    }
}

asio::awaitable<void> process_swarm::wait_children(process_swarm* self, core::duration limit) {
    const auto deadline = core::clock::now() + limit;
    while (!self->children_.empty() && core::clock::now() < deadline) {
        self->children_changed_.expires_at(deadline);
        co_await self->children_changed_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> process_swarm::shut_down(process_swarm* self) {
    if (self->clock_started_) end_progress(self->opt_);
    self->stopping_ = true;
    self->done_ = true;
    self->sample_timer_.cancel();
    for (auto& p : self->peers_) {
        close_player(*p);
        if (p->running) p->running = false;
    }
    for (auto& c : self->children_) c->signal(SIGTERM);
    co_await wait_children(self, term_grace);
    for (auto& c : self->children_) {
        std::cerr << fmt::format("swarmsim: {} did not stop within {:.0f} s of SIGTERM: killing it\n", c->name(),
                                 core::to_seconds(term_grace));
        c->signal(SIGKILL);
    }
    co_await wait_children(self, kill_grace);
    self->sigchld_.cancel();
    self->interrupt_.cancel();
}

// ---------------------------------------------------------------------------------------------

asio::awaitable<void> process_swarm::sample_loop(process_swarm* self) {
    auto next = self->t0_;
    while (!self->done_) {
        next += core::seconds(1);
        self->sample_timer_.expires_at(next);
        co_await self->sample_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (self->done_) co_return;
        std::vector<asio::awaitable<void>> tasks;
        for (auto& p : self->peers_) {
            if (p->running && !p->leaving) tasks.push_back(fetch_peer(p.get()));
        }
        tasks.push_back(fetch_source(self));
        co_await run_all(std::move(tasks));
        if (self->done_) co_return;
        self->record_sample();
    }
}

// Bytes the source uploaded: its own counter if its /stats has one, else the peers' payload
// counters: every payload byte a peer received came from another peer or from the source.
double process_swarm::source_upload_bytes(bool& estimated) const {
    if (source_stats_) {
        if (const auto v = number(*source_stats_, "bytes_out")) {
            estimated = false;
            return *v;
        }
    }
    estimated = true;
    double in = 0;
    double out = 0;
    for (const auto& p : peers_) {
        const auto& s = p->final ? p->final : p->last;
        if (!s) continue;
        in += static_cast<double>(s->payload_in);
        out += static_cast<double>(s->payload_out);
    }
    return std::max(0.0, in - out);
}

// Stream bytes produced: the chunk payloads the source published (as in the in-process mode), or
// what swarmsim fed it if its /stats does not say.
std::uint64_t process_swarm::stream_bytes() const {
    if (source_stats_ && number(*source_stats_, "bytes_published")) return counter(*source_stats_, "bytes_published");
    return fed_.end();
}

void process_swarm::record_sample() {
    const double t = elapsed();
    std::vector<double> lags;
    double cont = 0;
    int playing = 0;
    int running = 0;
    std::uint64_t sent = 0;
    for (auto& p : peers_) {
        if (!p->running || p->leaving || !p->last) continue;
        ++running;
        sent += p->last->bytes_out - std::min(p->last->bytes_out, p->sampled_bytes_out);
        p->sampled_bytes_out = p->last->bytes_out;
        if (p->last->played == 0) continue;
        ++playing;
        cont += p->last->continuity;
        lags.push_back(p->last->lag_p50);
    }
    const double dt = t - last_sample_t_;
    last_sample_t_ = t;
    const double per_peer = running > 0 && dt > 0 ? static_cast<double>(sent) * 8 / dt / running : 0;
    series_.push_back({t, quantile(lags, 0.5), playing ? cont / playing : 1.0, per_peer, playing});
    bool estimated = false;
    const double produced = static_cast<double>(stream_bytes());
    print_progress(opt_, series_.back(), running, produced > 0 ? source_upload_bytes(estimated) / produced : 0.0,
                   series_.size() % 5 == 1);
}

boost::json::object process_swarm::report() const {
    const auto& o = opt_;
    std::vector<double> continuity;
    std::vector<double> startup;
    std::vector<std::pair<peer_sample, double>> lag_of;
    std::vector<double> caps;
    bool identical = true;
    std::string identity_error;
    std::uint64_t wire_out = 0;
    std::uint64_t payload_out = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t bad_chunks = 0;
    std::uint64_t rejects_sent = 0;
    std::uint64_t protocol_errors = 0;
    std::uint64_t bans = 0;
    std::uint64_t dropped_slow = 0;
    std::uint64_t played = 0;
    std::uint64_t skipped = 0;
    std::uint64_t late = 0;
    std::uint64_t gaps = 0;
    std::uint64_t verified = 0;
    std::uint64_t player_bytes = 0;
    int player_errors = 0;
    int player_http_replies = 0;
    std::string player_http_status;
    std::string player_error;
    int never_played = 0;
    int no_stats = 0;
    double busy = 0;  // sum over peers of payload sent / (cap * time online)
    for (const auto& p : peers_) {
        caps.push_back(p->cap_bps);
        if (p->out) {
            const auto& c = p->out->check;
            if (!c.ok()) {
                identical = false;
                if (identity_error.empty()) identity_error = fmt::format("peer {}: {}", p->index, c.error());
            }
            gaps += c.gaps();
            verified += c.verified();
            player_bytes += c.bytes();
            if (p->out->http_replies > 0 && player_http_replies == 0)
                player_http_status = fmt::format("peer {}: {}", p->index, p->out->http_status);
            player_http_replies += p->out->http_replies;
            if (!p->out->error.empty() && player_errors++ == 0) player_error = fmt::format("peer {}: {}", p->index, p->out->error);
        }
        if (!p->launched) continue;
        if (!p->final) {
            // Never answered /stats: started too late to count, or, if it had time, continuity 0.
            if (p->left || o.duration - p->start_s < o.buffer + 5) continue;
            ++no_stats;
            ++never_played;
            continuity.push_back(0);
            continue;
        }
        const auto& s = *p->final;
        duplicates += s.duplicate_chunks;
        bad_chunks += s.bad_chunks;
        rejects_sent += s.rejects_sent;
        protocol_errors += s.protocol_errors;
        bans += s.bans;
        dropped_slow += s.dropped_slow;
        played += s.played;
        skipped += s.skipped;
        late += s.late;
        wire_out += s.bytes_out;
        payload_out += s.payload_out;
        if (p->online_s > 0) busy += static_cast<double>(s.payload_out) * 8 / (p->cap_bps * p->online_s);
        if (opt_.per_peer)
            std::cout << fmt::format("peer {:3d} start {:5.2f} online {:5.1f} played {:4d} skipped {:4d} late {:4d} continuity {:.4f} "
                                     "startup {:5.2f} lag {:.2f}/{:.2f}/{:.2f} in {:8d} out {:8d} dup {:3d} nb {:2d} "
                                     "output {:8d} gaps {:2d}{}{}{}\n",
                                     p->index, p->start_s, p->online_s, s.played, s.skipped, s.late, s.continuity,
                                     s.startup_s.value_or(-1), s.lag_p50, s.lag_p95, s.lag_max, s.payload_in, s.payload_out,
                                     s.duplicate_chunks, s.neighbours, p->out ? p->out->check.bytes() : 0,
                                     p->out ? p->out->check.gaps() : 0, p->left ? " (churned)" : "",
                                     p->out && p->out->http_replies ? fmt::format(" (player got {})", p->out->http_status) : "",
                                     p->out && !p->out->check.ok() ? " OUTPUT DIFFERS: " + p->out->check.error() : "");
        if (s.played == 0) {
            // A peer that had enough time and played nothing counts as continuity 0.
            if (p->left || o.duration - p->start_s < o.buffer + 5) continue;
            ++never_played;
            continuity.push_back(0);
            continue;
        }
        continuity.push_back(s.continuity);
        if (s.startup_s) startup.push_back(*s.startup_s);
        lag_of.emplace_back(s, static_cast<double>(s.played));
    }
    bool estimated = false;
    const double source_out = source_upload_bytes(estimated);
    if (!estimated && source_stats_) {
        wire_out += counter(*source_stats_, "bytes_out");
        payload_out += counter(*source_stats_, "payload_bytes_out");
    }
    const auto produced = stream_bytes();
    const double fed_seconds = static_cast<double>(fed_.end()) / (o.rate_bps / 8);
    const auto chunks = source_stats_ && number(*source_stats_, "chunks_published")
                            ? counter(*source_stats_, "chunks_published")
                            : static_cast<std::uint64_t>(std::llround(fed_seconds / o.chunk_seconds));
    const double n = o.peers;
    const double u_s = o.source_cap_bps > 0 ? o.source_cap_bps : 1e12;
    double sum_u = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(o.peers) && i < peers_.size(); ++i) sum_u += peers_[i]->cap_bps;
    const double median_cap = quantile(caps, 0.5);
    const double chunk_bytes = o.rate_bps / 8 * o.chunk_seconds;
    const double chunk_tx = chunk_bytes * 8 / median_cap;
    const double mean = continuity.empty() ? 0 : std::accumulate(continuity.begin(), continuity.end(), 0.0) / static_cast<double>(continuity.size());
    boost::json::object diagnostics{
        {"duplicate_chunks", duplicates},
        {"bad_chunks", bad_chunks},
        {"rejects_sent", rejects_sent},
        {"protocol_errors", protocol_errors},
        {"bans", bans},
        {"peer_upload_utilisation", peers_.empty() ? 0.0 : busy / static_cast<double>(peers_.size())},
        {"processes_started", processes_started_},
        {"peers_without_stats", no_stats},
        {"players_dropped_slow", dropped_slow},
        {"chunks_played", played},
        {"chunks_skipped", skipped},
        {"chunks_late", late},
        {"player_errors", player_errors},
        {"player_http_replies", player_http_replies},
        {"output_bytes", player_bytes},
        {"output_bytes_verified", verified},
        {"output_gaps", gaps},
        // Without a byte counter in pixtream-source's /stats: the peers' payload bytes received minus
        // sent (payload only, and blind to bytes in flight at the last sample).
        {"source_upload_estimated", estimated},
        {"chunks_estimated", !(source_stats_ && number(*source_stats_, "chunks_published"))},
    };
    if (!identity_error.empty()) diagnostics["identity_error"] = identity_error;
    if (!player_error.empty()) diagnostics["player_error"] = player_error;
    if (!player_http_status.empty()) diagnostics["player_http_reply"] = player_http_status;
    return boost::json::object{
        {"config", boost::json::object{{"peers", o.peers}, {"duration_s", o.duration}, {"rate_bps", o.rate_bps},
                                       {"upload_cap_bps", boost::json::array{o.cap_min_bps, o.cap_max_bps}},
                                       {"source_cap_bps", o.source_cap_bps}, {"churn", o.churn},
                                       {"buffer_s", o.buffer}, {"upload_backlog_s", o.upload_backlog}, {"chunk_seconds", o.chunk_seconds},
                                       {"seed", o.seed}, {"mode", "processes"}}},
        {"continuity", boost::json::object{{"mean", mean},
                                           {"min", continuity.empty() ? 0.0 : *std::min_element(continuity.begin(), continuity.end())},
                                           {"peers", continuity.size()}, {"never_played", never_played}}},
        {"startup_s", stats3(startup)},
        {"lag_s", pooled_lag(lag_of)},
        {"source_upload_ratio", produced ? source_out / static_cast<double>(produced) : 0.0},
        {"overhead_ratio", payload_out ? static_cast<double>(wire_out - payload_out) / static_cast<double>(payload_out) : 0.0},
        {"identical", identical},
        {"lag_bound_s", o.chunk_seconds + std::ceil(std::log2(std::max(2.0, n))) * chunk_tx},
        {"capacity_bps", std::min(u_s, (u_s + sum_u) / n)},
        {"resource_index", (u_s + sum_u) / (n * o.rate_bps)},
        {"diagnostics", std::move(diagnostics)},
        {"stream_bytes", produced},
        {"chunks", chunks},
    };
}

process_run process_swarm::run() {
    asio::co_spawn(io_, reap_loop(this), net::log_errors("swarmsim: reaper"));
    asio::co_spawn(io_, interrupt_loop(this), net::log_errors("swarmsim: signals"));
    asio::co_spawn(io_, main_task(this), [this](std::exception_ptr e) {
        net::log_errors("swarmsim: run")(e);
        io_.stop();  // whatever is still pending (a child's last output) is not needed
    });
    io_.run();
    process_run r;
    if (interrupted_ != 0) {
        r.status = 128 + interrupted_;
        return r;
    }
    if (!error_.empty()) {
        std::cerr << "swarmsim: " << error_ << (error_.back() == '\n' ? "" : "\n");
        r.status = 1;
        return r;
    }
    r.report = report();
    r.series = series_;
    const auto& d = r.report.at("diagnostics").as_object();
    if (const auto n = d.at("player_http_replies").to_number<int>(); n > 0) {
        std::cerr << fmt::format("swarmsim: {} player connection(s) got an HTTP reply instead of the raw stream ({}) and "
                                 "connected again\n",
                                 n, d.at("player_http_reply").as_string().c_str());
    }
    return r;
}

}  // namespace

process_run run_processes(const options& opt) {
    // A write to the stdin of a source that died must fail with EPIPE, not kill swarmsim.
    ::signal(SIGPIPE, SIG_IGN);
    try {
        asio::io_context io(1);
        process_swarm swarm(io, opt);
        return swarm.run();
    } catch (const std::exception& e) {
        std::cerr << "swarmsim: " << e.what() << '\n';
        return process_run{1, {}, {}};
    }
}

}  // namespace pixtream::swarmsim
