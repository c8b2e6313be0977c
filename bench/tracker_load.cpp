// Tracker load benchmark: announces per second over loopback for pixtream-tracker and, in the same
// run on the same machine, for opentracker (Debian package), with the ratio between them.
//
// Each run: start the tracker as a real process on a free port, then `--clients` concurrent
// connections announce as fast as they can for `--seconds`, each announce a random peer of a
// `--swarm`-peer swarm asking for 50 peers. Mode `new_connection` opens one TCP connection per
// announce (what BitTorrent clients do); `keep_alive` reuses connections (pixtream only: opentracker
// closes after each reply). Every reply is checked (status 200, the tracker's own format with a peer
// list); any failure is reported as a benchmark error, never hidden in the rate.
//
// Output: Google Benchmark-style JSON on stdout (see tools/bench_summary.py).
// Usage: pixtream_bench_tracker [--seconds S] [--clients N] [--swarm N] [--short]
#include "subprocess.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using pixtream::test::subprocess;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct options {
    double seconds = 3;
    int clients = 32;
    int swarm = 2000;
};

struct outcome {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::string first_error;
    double seconds = 0;
    double rate() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

enum class flavour { pixtream, opentracker };

std::string hex(const std::array<std::uint8_t, 20>& b) {
    std::string s;
    for (auto c : b) s += fmt::format("{:02x}", c);
    return s;
}

std::string percent(const std::array<std::uint8_t, 20>& b) {
    std::string s;
    for (auto c : b) s += fmt::format("%{:02X}", c);
    return s;
}

// The benchmark's one torrent / channel id (the first 20 bytes of the channel key).
std::array<std::uint8_t, 20> info_hash() {
    std::mt19937_64 gen(11);
    std::array<std::uint8_t, 20> info{};
    for (auto& c : info) c = static_cast<std::uint8_t>(gen());
    return info;
}

// Announce targets for `swarm` peers of one channel / torrent.
std::vector<std::string> make_targets(flavour f, int swarm) {
    const auto info = info_hash();
    std::mt19937_64 gen(12);
    std::vector<std::string> out;
    for (int i = 0; i < swarm; ++i) {
        std::array<std::uint8_t, 20> peer{};
        for (auto& c : peer) c = static_cast<std::uint8_t>(gen());
        const int port = 10000 + i % 50000;
        if (f == flavour::pixtream) {
            out.push_back(fmt::format("/announce?channel={}{}&peer_id={}&port={}&numwant=50", hex(info),
                                      std::string(24, '0'), hex(peer), port));
        } else {
            out.push_back(fmt::format(
                "/announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left=0&compact=1&numwant=50",
                percent(info), percent(peer), port));
        }
    }
    return out;
}

// Checks one reply body in the tracker's own format: the frame of every reply, and a full parse
// (every peer entry well-formed, `want` of them) for one reply in 32, so that checking does not
// become the bottleneck of the load generator.
bool valid_reply(flavour f, const std::string& body, bool full, std::size_t want) {
    if (f == flavour::opentracker) {
        const auto at = body.find("5:peers");
        if (!body.starts_with("d") || at == std::string::npos) return false;
        if (!full) return true;
        const auto colon = body.find(':', at + 7);
        return colon != std::string::npos && std::stoul(body.substr(at + 7, colon - at - 7)) == 6 * want;
    }
    if (!body.starts_with("{\"interval\":") || !body.ends_with("]}") || body.find("\"peers\":[") == std::string::npos)
        return false;
    if (!full) return true;
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object() || !v.at("peers").is_array()) return false;
    const auto& peers = v.at("peers").get_array();
    for (const auto& p : peers) {
        if (!p.is_object() || !p.at("id").is_string() || p.at("id").get_string().size() != 40 || !p.at("port").is_int64())
            return false;
    }
    return peers.size() == want;
}

// Announces random targets until `until`; in warm-up, announces each target once, in order, and
// checks replies only for their frame (the swarm is still filling up).
asio::awaitable<void> worker(tcp::endpoint at, flavour f, bool keep_alive, const std::vector<std::string>* targets,
                             std::chrono::steady_clock::time_point until, unsigned seed, bool warmup, outcome* out) {
    auto ex = co_await asio::this_coro::executor;
    std::mt19937 gen(seed);
    std::optional<tcp::socket> sock;
    beast::flat_buffer buffer;
    auto fail = [&](const std::string& why) {
        ++out->failed;
        if (out->first_error.empty()) out->first_error = why;
        sock.reset();
    };
    std::size_t next = 0;
    while (warmup ? next < targets->size() : std::chrono::steady_clock::now() < until) {
        if (!sock) {
            sock.emplace(ex);
            buffer.clear();
            auto [cec] = co_await sock->async_connect(at, use_tuple);
            if (cec) {
                fail("connect: " + cec.message());
                continue;
            }
        }
        const auto& target = warmup ? (*targets)[next++] : (*targets)[gen() % targets->size()];
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.keep_alive(keep_alive);
        auto [wec, w] = co_await http::async_write(*sock, req, use_tuple);
        if (wec) {
            fail("write: " + wec.message());
            continue;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        auto [rec, r] = co_await http::async_read(*sock, buffer, parser, use_tuple);
        if (rec) {
            fail("read: " + rec.message());
            continue;
        }
        const auto& res = parser.get();
        const bool full = !warmup && (out->ok + out->failed) % 32 == 0;
        if (res.result() != http::status::ok || !valid_reply(f, res.body(), full, 50)) {
            fail(fmt::format("bad reply {}: {}", res.result_int(), res.body().substr(0, 120)));
            continue;
        }
        ++out->ok;
        if (!keep_alive || !res.keep_alive()) sock.reset();
    }
}

// Completion handler for a worker: an exception counts as a failed announce with its reason.
auto record_exception(outcome* out) {
    return [out](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            ++out->failed;
            if (out->first_error.empty()) out->first_error = ex.what();
        }
    };
}

outcome run_load(tcp::endpoint at, flavour f, bool keep_alive, const options& opt) {
    const auto targets = make_targets(f, opt.swarm);
    asio::io_context io(1);
    outcome warm;
    asio::co_spawn(io, worker(at, f, keep_alive, &targets, {}, 0, true, &warm), record_exception(&warm));
    io.run();
    io.restart();
    if (warm.failed > 0) return warm;  // the tracker is not answering properly: report that
    outcome out;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(opt.seconds));
    for (int i = 0; i < opt.clients; ++i) {
        asio::co_spawn(io, worker(at, f, keep_alive, &targets, until, static_cast<unsigned>(i), false, &out),
                       record_exception(&out));
    }
    io.run();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

std::uint16_t free_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// Waits until something accepts connections on `port` (the process is starting up); bounded.
bool wait_listening(std::uint16_t port) {
    asio::io_context io;
    for (int i = 0; i < 500; ++i) {
        tcp::socket s(io);
        boost::system::error_code ec;
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        if (!ec) return true;
        std::this_thread::sleep_for(10ms);  // a process start-up poll, not test synchronisation
    }
    return false;
}

boost::json::object entry(const std::string& name, const outcome& o) {
    boost::json::object b{{"name", name},
                          {"run_name", name},
                          {"run_type", "iteration"},
                          {"iterations", o.ok},
                          {"real_time", o.ok ? o.seconds * 1e9 / static_cast<double>(o.ok) : 0.0},
                          {"cpu_time", o.ok ? o.seconds * 1e9 / static_cast<double>(o.ok) : 0.0},
                          {"time_unit", "ns"},
                          {"items_per_second", o.rate()},
                          {"failed_announces", o.failed}};
    // A benchmark with any failed announce is not a figure: report it as an error.
    if (o.failed > 0 || o.ok == 0) {
        b["error_occurred"] = true;
        b["error_message"] = fmt::format("{} announces failed; first: {}", o.failed, o.first_error);
    }
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--seconds") opt.seconds = std::stod(next());
            else if (a == "--clients") opt.clients = std::stoi(next());
            else if (a == "--swarm") opt.swarm = std::stoi(next());
            else if (a == "--short") opt.seconds = 1;
            else if (a.starts_with("--benchmark_min_time")) opt.seconds = 1;  // tools/bench --short
            else if (a.starts_with("--benchmark_")) continue;                  // other Google Benchmark flags
            else if (a == "-h" || a == "--help") {
                std::cout << "Usage: pixtream_bench_tracker [--seconds S] [--clients N] [--swarm N] [--short]\n";
                return 0;
            } else throw std::invalid_argument("unknown argument " + a);
        } catch (const std::exception& e) {
            std::cerr << "pixtream_bench_tracker: " << e.what() << '\n';
            return 2;
        }
    }

    boost::json::array results;
    const auto pix_port = free_port();
    outcome pix_new;
    outcome pix_keep;
    {
        subprocess tracker({PIXTREAM_TRACKER_EXE, "--bind", "127.0.0.1", "-p", std::to_string(pix_port), "--log-level",
                            "error", "--max-connections", "100000"});
        if (!wait_listening(pix_port)) {
            std::cerr << "pixtream_bench_tracker: pixtream-tracker did not start\n";
            return 1;
        }
        const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), pix_port);
        // The source creates the channel first, as in real use.
        {
            asio::io_context io;
            tcp::socket s(io);
            s.connect(at);
            const auto t = make_targets(flavour::pixtream, 1)[0] + "&event=started&source=1&name=bench";
            http::request<http::empty_body> req{http::verb::get, t, 11};
            req.set(http::field::host, "127.0.0.1");
            http::write(s, req);
            beast::flat_buffer b;
            http::response<http::string_body> res;
            http::read(s, b, res);
            if (res.result() != http::status::ok) {
                std::cerr << "pixtream_bench_tracker: channel creation failed: " << res.body() << '\n';
                return 1;
            }
        }
        pix_new = run_load(at, flavour::pixtream, false, opt);
        pix_keep = run_load(at, flavour::pixtream, true, opt);
    }
    results.push_back(entry("tracker_announce/pixtream/new_connection", pix_new));
    results.push_back(entry("tracker_announce/pixtream/keep_alive", pix_keep));

    const char* ot_exe = "/usr/bin/opentracker";
    outcome ot;
    if (::access(ot_exe, X_OK) != 0) {
        ot.first_error = "opentracker is not installed (tools/install-deps installs it)";
    } else {
        // Debian's opentracker only serves whitelisted torrents; it chroots to -d and reads -w there.
        char dir_template[] = "/tmp/pixtream-opentracker-XXXXXX";
        const std::string dir = ::mkdtemp(dir_template);
        ::chmod(dir.c_str(), 0755);  // opentracker reads it after dropping to user nobody
        std::FILE* wl = std::fopen((dir + "/whitelist").c_str(), "w");
        std::fputs((hex(info_hash()) + "\n").c_str(), wl);
        std::fclose(wl);
        const auto ot_port = free_port();
        subprocess opentracker({ot_exe, "-i", "127.0.0.1", "-p", std::to_string(ot_port), "-P", std::to_string(ot_port),
                                "-d", dir, "-w", "whitelist"});
        if (!wait_listening(ot_port)) {
            ot.first_error = "opentracker did not start: " + opentracker.stderr_text();
        } else {
            ot = run_load(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ot_port), flavour::opentracker, false, opt);
        }
        std::remove((dir + "/whitelist").c_str());
        ::rmdir(dir.c_str());
    }
    results.push_back(entry("tracker_announce/opentracker/new_connection", ot));

    boost::json::object ratio{{"name", "tracker_announce/ratio_pixtream_to_opentracker"},
                              {"run_name", "tracker_announce/ratio_pixtream_to_opentracker"},
                              {"run_type", "iteration"},
                              {"iterations", 1},
                              {"real_time", 0.0},
                              {"cpu_time", 0.0},
                              {"time_unit", "ns"},
                              {"ratio", ot.rate() > 0 ? pix_new.rate() / ot.rate() : 0.0}};
    if (ot.rate() <= 0) {
        ratio["error_occurred"] = true;
        ratio["error_message"] = "no opentracker figure: " + ot.first_error;
    }
    results.push_back(ratio);

    boost::json::object doc{{"context", boost::json::object{{"executable", "pixtream_bench_tracker"},
                                                            {"seconds_per_run", opt.seconds},
                                                            {"clients", opt.clients},
                                                            {"swarm", opt.swarm},
                                                            {"numwant", 50},
                                                            {"num_cpus", std::thread::hardware_concurrency()}}},
                            {"benchmarks", std::move(results)}};
    std::cout << boost::json::serialize(doc) << std::endl;
    return 0;
}
