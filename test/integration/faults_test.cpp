// Faults, with real processes on 127.0.0.1: the tracker dies and comes back mid-stream (peers keep
// streaming and announce again); 30 % of the peers churn (the others do not notice); the source's
// TCP or HTTP input drops and comes back (the source reconnects and the stream resumes, byte for byte).
#include "helpers.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace pixtream::test;
using namespace std::chrono_literals;

namespace {


std::unique_ptr<subprocess> start_tracker(std::uint16_t port) {
    auto t = std::make_unique<subprocess>(std::vector<std::string>{tracker_exe, "-p", std::to_string(port), "--bind",
                                                                   "127.0.0.1", "-i", "1", "--log-level", "warn"});
    if (!t->read_line()) BOOST_FAIL("tracker did not start on port " << port << ": " << t->stderr_text());
    return t;
}

struct viewer {
    std::unique_ptr<subprocess> proc;
    std::unique_ptr<player> out;
    std::uint16_t player_port = 0;
    bool may_skip = false;  // joined a disturbed swarm: skipped chunks allowed, each one accounted for
};

viewer start_viewer(const std::string& tracker_url, const std::string& channel, const std::string& buffer) {
    viewer v;
    v.proc = std::make_unique<subprocess>(std::vector<std::string>{peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0",
                                                                   "--buffer", buffer, "--linger", "6", "--channel",
                                                                   channel, "--log-level", "warn", tracker_url});
    const auto line = v.proc->read_line();
    if (!line) BOOST_FAIL("peer did not start: " << v.proc->stderr_text());
    v.player_port = ports_of(*line).second;
    v.out = std::make_unique<player>();
    v.out->start(v.player_port);
    return v;
}

// A source reading `media` at its bitrate from a file.
std::unique_ptr<subprocess> start_file_source(const temp_dir& dir, const fs::path& media, double rate,
                                              const std::string& tracker_url, const std::string& channel) {
    auto s = std::make_unique<subprocess>(std::vector<std::string>{
        source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--rate", std::to_string(rate), "--key",
        (dir.path / "key").string(), "--channel", channel, "--linger", "8", "--chunk-seconds", "0.25", "--log-level",
        "warn", tracker_url, "file", media.string()});
    if (!s->read_line()) BOOST_FAIL("source did not start: " << s->stderr_text());
    return s;
}

// A tracker on a known port and a source reading a generated MPEG-TS file of `seconds` at its bitrate.
struct file_swarm {
    temp_dir dir;
    std::string input;
    std::uint16_t port = free_port();
    std::string tracker_url = "http://127.0.0.1:" + std::to_string(port);
    std::unique_ptr<subprocess> tracker;
    std::unique_ptr<subprocess> source;

    file_swarm(int seconds, const std::string& channel) {
        const auto media = make_media(dir.path, "ts", seconds);
        input = read_file(media);
        tracker = start_tracker(port);
        source = start_file_source(dir, media, static_cast<double>(input.size()) / seconds, tracker_url, channel);
    }
};

// Every viewer's player reaches the end of the stream (EOF); then, while the peers linger, their
// /stats; then every output against the input:
// - a viewer that must miss nothing: continuity 1, and its output is the input from where it joined to
//   the end with no byte missing (behind the header chunk replayed for a late joiner);
// - a viewer that may skip (`may_skip`): its output is pieces of the input in order up to the end,
//   and its peer counted a skipped chunk for every gap (no gap if it skipped nothing); the gaps are
//   logged.
// And `ffmpeg -v warning` decodes every output silently.
void check_outputs(std::vector<viewer>& viewers, const std::string& input, const temp_dir& dir) {
    for (auto& v : viewers) v.out->join();
    std::vector<boost::json::value> stats;
    for (auto& v : viewers) {
        const auto body = http_get(v.player_port, "/stats");
        stats.push_back(body.empty() ? boost::json::value(nullptr) : boost::json::parse(body));
    }
    for (std::size_t i = 0; i < viewers.size(); ++i) {
        auto& v = viewers[i];
        BOOST_TEST_CONTEXT("viewer " << i << (v.may_skip ? " (may skip)" : "")) {
            BOOST_TEST(v.out->error.empty(), v.out->error);
            BOOST_TEST_REQUIRE(stats[i].is_object(), "no /stats");
            const auto& st = stats[i].as_object();
            const auto& out = v.out->data;
            BOOST_TEST_REQUIRE(out.size() > input.size() / 10, "only " << out.size() << " of " << input.size() << " bytes");
            const auto m = match_output(out, input);
            BOOST_TEST_MESSAGE("viewer " << i << ": " << m.describe() << "; /stats " << boost::json::serialize(st));
            if (v.may_skip) {
                BOOST_TEST(m.reaches_end(), m.describe());
                BOOST_TEST(static_cast<double>(m.gaps.size()) <= st.at("chunks_skipped").to_number<double>(),
                           "more gaps than the " << st.at("chunks_skipped") << " chunks the peer counted as skipped: "
                                                  << m.describe());
            } else {
                BOOST_TEST(st.at("continuity").to_number<double>() == 1.0);
                BOOST_TEST(m.exact(), m.describe());
            }
            const auto file = dir.path / ("out" + std::to_string(i) + ".ts");
            std::ofstream(file, std::ios::binary) << out;
            int status = 0;
            const auto warnings = run_ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"}, status);
            BOOST_TEST(status == 0);
            BOOST_TEST(warnings.empty(), "ffmpeg says: " << warnings);
        }
    }
}

// Serves `input` over TCP (or as a close-delimited HTTP response) at `rate` bytes/s: the first
// connection gets [0, cut) and is then closed; the next one gets [cut, end). Later connections get
// nothing and are held open until the server stops (the source keeps retrying a live input).
class dropping_server {
public:
    dropping_server(const std::string& input, std::size_t cut, double rate, bool http)
        : input_(input), cut_(cut), rate_(rate), http_(http),
          acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        thread_ = std::thread([this] { serve(); });
    }
    ~dropping_server() {
        stopping_ = true;
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocking accept
        thread_.join();
        boost::system::error_code ignored;
        for (auto& s : held_) s.close(ignored);
        acceptor_.close(ignored);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int connections() const { return connections_; }

private:
    void serve() {
        while (!stopping_) {
            boost::system::error_code ec;
            tcp::socket s(io_);
            acceptor_.accept(s, ec);
            if (ec) return;
            ++connections_;
            if (http_) {
                // Read the request head, answer with a body that ends when the connection closes.
                std::string head;
                char c = 0;
                while (head.find("\r\n\r\n") == std::string::npos && asio::read(s, asio::buffer(&c, 1), ec) == 1) head += c;
                if (ec) continue;
                asio::write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n")), ec);
            }
            if (connections_ == 1) {
                send_paced(s, 0, cut_);
            } else if (connections_ == 2) {
                send_paced(s, cut_, input_.size());
            }
            if (connections_ >= 2) {
                held_.push_back(std::move(s));  // the live input has nothing more: keep it quiet, not closed
            } else {
                // The drop. Shut down, not just close: the programs this test spawned inherited the socket.
                s.shutdown(tcp::socket::shutdown_both, ec);
                s.close(ec);
            }
        }
    }
    // Writes [from, to) at the rate: a live input, not a file dump.
    void send_paced(tcp::socket& s, std::size_t from, std::size_t to) {
        const auto start = std::chrono::steady_clock::now();
        constexpr std::size_t block = 188 * 20;
        for (std::size_t at = from; at < to && !stopping_; at += block) {
            const auto n = std::min(block, to - at);
            boost::system::error_code ec;
            asio::write(s, asio::buffer(input_.data() + at, n), ec);
            if (ec) return;
            const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                         std::chrono::duration<double>(static_cast<double>(at + n - from) / rate_));
            std::this_thread::sleep_until(due);  // pacing the emulated live input, not synchronisation
        }
    }

    const std::string& input_;
    std::size_t cut_;
    double rate_;
    bool http_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::vector<tcp::socket> held_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> connections_{0};
    std::thread thread_;
};

// The source reads a TCP (or HTTP) input that drops after 40 % of the stream; it reconnects and the
// rest follows. The viewers' outputs are the input byte for byte across the drop.
void input_drops_and_returns(bool http) {
    temp_dir dir;
    constexpr int seconds = 12;
    const auto input = read_file(make_media(dir.path, "ts", seconds));
    const double rate = static_cast<double>(input.size()) / seconds;
    const auto cut = input.size() * 2 / 5 / 188 * 188;
    dropping_server server(input, cut, rate, http);
    const auto tport = free_port();
    const auto tracker_url = "http://127.0.0.1:" + std::to_string(tport);
    auto tracker = start_tracker(tport);
    const auto where = "127.0.0.1:" + std::to_string(server.port());
    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--key", (dir.path / "key").string(),
                       "--channel", "ft-input", "--chunk-seconds", "0.25", "--log-level", "warn", tracker_url,
                       http ? "http" : "tcp", http ? "http://" + where + "/live.ts" : where});
    const auto sline = source.read_line();
    if (!sline) BOOST_FAIL("source did not start: " << source.stderr_text());
    const auto source_player_port = ports_of(*sline).second;
    std::vector<viewer> viewers;
    for (int i = 0; i < 2; ++i) viewers.push_back(start_viewer(tracker_url, "ft-input", "1.5"));

    // Every viewer gets the whole rest of the stream, up to the input's last byte.
    for (std::size_t i = 0; i < viewers.size(); ++i) {
        BOOST_TEST_CONTEXT("viewer " << i) {
            const bool complete = eventually(
                [&] {
                    return viewers[i].out->received >= input.size() / 2 &&
                           std::string_view(viewers[i].out->data).ends_with(std::string_view(input).substr(input.size() - 188));
                },
                60s);
            if (!complete) BOOST_FAIL("the stream did not resume to its end: " << viewers[i].out->received << " bytes");
        }
    }
    BOOST_TEST(server.connections() >= 2);
    const auto stats = boost::json::parse(http_get(source_player_port, "/stats"));
    BOOST_TEST(stats.at("input").at("reconnects").to_number<double>() >= 1);
    BOOST_TEST(stats.at("bytes_published").to_number<double>() == static_cast<double>(input.size()));
    // Byte for byte across the drop: the input from where the viewer joined (before the cut) to the
    // end, no byte missing.
    for (std::size_t i = 0; i < viewers.size(); ++i) {
        BOOST_TEST_CONTEXT("viewer " << i) {
            const auto m = match_output(viewers[i].out->data, input);
            BOOST_TEST(m.exact(), m.describe());
            BOOST_TEST(m.start < cut, "the output does not span the drop: " << m.describe());
        }
    }
    // A live input never ends by itself: stop the source, and the peers with it.
    source.signal(SIGTERM);
    BOOST_TEST(source.wait(30s).value_or(-1) == 0);
    for (auto& v : viewers) v.proc->signal(SIGTERM);
    for (auto& v : viewers) BOOST_TEST(v.proc->wait(30s).value_or(-1) == 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(faults)

// The tracker is killed mid-stream: the peers keep streaming; it comes back on the same port and
// everyone announces again, so a peer that joins afterwards finds the swarm.
BOOST_AUTO_TEST_CASE(tracker_restarted_mid_stream) {
    file_swarm sw(20, "ft-tracker");
    const auto& input = sw.input;
    const auto& tracker_url = sw.tracker_url;
    const auto port = sw.port;
    auto& tracker = sw.tracker;
    std::vector<viewer> viewers;
    for (int i = 0; i < 3; ++i) viewers.push_back(start_viewer(tracker_url, "ft-tracker", "1.5"));
    for (auto& v : viewers) {
        if (!eventually([&] { return v.out->received > input.size() / 8; }, 30s)) BOOST_FAIL("no stream reached a viewer");
    }

    tracker->signal(SIGKILL);
    BOOST_TEST_REQUIRE(tracker->wait(10s).has_value());
    std::vector<std::size_t> at_kill;
    for (auto& v : viewers) at_kill.push_back(v.out->received);
    for (std::size_t i = 0; i < viewers.size(); ++i) {
        BOOST_TEST_CONTEXT("viewer " << i << " while the tracker is down") {
            BOOST_TEST(eventually([&] { return viewers[i].out->received > at_kill[i] + input.size() / 10; }, 20s));
        }
    }

    tracker = start_tracker(port);
    // Source and viewers announce again (after their backoff): the new tracker knows all four.
    const bool back = eventually(
        [&] {
            const auto body = http_get(port, "/stats");
            return !body.empty() && boost::json::parse(body).at("peers").to_number<double>() >= 4;
        },
        30s);
    BOOST_TEST_REQUIRE(back, "peers did not announce to the restarted tracker: " << http_get(port, "/stats"));
    viewers.push_back(start_viewer(tracker_url, "ft-tracker", "1.5"));
    BOOST_TEST(eventually([&] { return viewers.back().out->received > 0; }, 20s), "the late viewer got no stream");

    viewers.back().may_skip = true;  // joined while the swarm re-formed around the new tracker
    check_outputs(viewers, input, sw.dir);
    BOOST_TEST(sw.source->wait(30s).value_or(-1) == 0);
}

// A peer started while the tracker is down keeps asking it, and joins once it is back.
BOOST_AUTO_TEST_CASE(peer_started_while_the_tracker_is_down_joins_later) {
    temp_dir dir;
    const auto media = make_media(dir.path, "ts", 12);
    const auto input = read_file(media);
    const auto port = free_port();
    const auto url = "http://127.0.0.1:" + std::to_string(port);
    subprocess peer({peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--buffer", "1.5", "--wait-channel", "60",
                     "--channel", "ft-down", "--log-level", "warn", url});
    const auto said = peer.read_line(15s);
    BOOST_TEST_REQUIRE(said.has_value(), "the peer said nothing: " << peer.stderr_text());
    BOOST_TEST(said->find("tracker unreachable") != std::string::npos, *said);
    auto tracker = start_tracker(port);
    auto source = start_file_source(dir, media, static_cast<double>(input.size()) / 12, url, "ft-down");
    // Its start-up line follows once the tracker answered with the channel.
    std::optional<std::string> line;
    while ((line = peer.read_line(30s)) && line->find("players on") == std::string::npos) {}
    BOOST_TEST_REQUIRE(line.has_value(), "the peer did not join: " << peer.stderr_text());
    player out;
    out.start(ports_of(*line).second);
    BOOST_TEST(eventually([&] { return out.received > input.size() / 4; }, 30s), "no stream reached the peer");
    peer.signal(SIGTERM);
    source->signal(SIGTERM);
}

// Ten peers; three are SIGKILLed mid-stream and three newcomers take their places. The seven that
// stay miss nothing; the newcomers' outputs decode.
BOOST_AUTO_TEST_CASE(thirty_percent_of_peers_churn) {
    file_swarm sw(16, "ft-churn");
    const auto& input = sw.input;
    const auto& tracker_url = sw.tracker_url;
    std::vector<viewer> stay;
    std::vector<viewer> leave;
    for (int i = 0; i < 10; ++i) (i < 3 ? leave : stay).push_back(start_viewer(tracker_url, "ft-churn", "2"));
    for (auto& v : leave) {
        if (!eventually([&] { return v.out->received > input.size() / 4; }, 30s)) BOOST_FAIL("no stream reached a viewer");
    }
    std::vector<viewer> newcomers;
    for (auto& v : leave) {
        v.proc->signal(SIGKILL);
        newcomers.push_back(start_viewer(tracker_url, "ft-churn", "2"));
    }
    for (auto& v : newcomers) {
        v.may_skip = true;  // joined a swarm that just lost three peers
        stay.push_back(std::move(v));
    }
    check_outputs(stay, input, sw.dir);
    BOOST_TEST(sw.source->wait(30s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(tcp_input_drops_and_returns) { input_drops_and_returns(false); }

BOOST_AUTO_TEST_CASE(http_input_drops_and_returns) { input_drops_and_returns(true); }

BOOST_AUTO_TEST_SUITE_END()
