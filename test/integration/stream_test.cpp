// The whole system as real processes on 127.0.0.1: pixtream-tracker, pixtream-source reading an
// ffmpeg-generated file at its bitrate, and several pixtream-peer processes, each with a raw-TCP
// player capturing its output. Checks: every player's output is the source input from where it joined
// to the end with no byte missing; `ffmpeg -v warning` decodes it silently; a late joiner's output
// decodes; one peer SIGKILLed mid-stream disturbs no one; the end of the input reaches every player as EOF.
#include "helpers.hpp"

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
using namespace pixtream::test;
using namespace std::chrono_literals;

namespace {


void stream_through_swarm(const std::string& kind, int seconds) {
    temp_dir dir;
    const auto media = make_media(dir.path, kind, seconds);
    const auto input = read_file(media);
    const double rate = static_cast<double>(input.size()) / seconds;

    subprocess tracker({tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "1", "--log-level", "warn"});
    const auto turl = tracker_url(tracker);

    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--rate", std::to_string(rate), "--key",
                       (dir.path / "key").string(), "--channel", "it-" + kind, "--linger", "8", "--chunk-seconds",
                       "0.25", "--log-level", "warn", turl, "file", media.string()});
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
            "it-" + kind, "--log-level", "warn", turl}));
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
        // Fresh chunks went to peers picked by how fast they spread them, and spreads were seen.
        const auto& targets = stats.at("push_targets");
        BOOST_TEST(targets.at("picks").to_number<double>() >= stats.at("chunks_published").to_number<double>() / 2);
        BOOST_TEST(targets.at("spread").to_number<double>() > 0.0);
    }
    players[2]->join();
    for (std::size_t i = 0; i < players.size(); ++i) {
        if (i == 2) continue;
        BOOST_TEST_CONTEXT(kind << " player " << i << (i == players.size() - 1 ? " (late joiner)" : "")) {
            const auto& out = players[i]->data;
            BOOST_TEST_REQUIRE(out.size() > input.size() / 4, "only " << out.size() << " of " << input.size() << " bytes");
            // No peer skipped a chunk (/stats above): every output is the input from where its player
            // joined to the end, with no byte missing, behind the header chunk replayed for a late joiner.
            const auto m = match_output(out, input);
            BOOST_TEST(m.exact(), m.describe());
            if (i + 1 < players.size()) BOOST_TEST(m.start < input.size() / 2, "joined too late: " << m.describe());
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
