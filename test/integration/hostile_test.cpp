// pixtream-hostile against a victim pixtream-peer in a real swarm on 127.0.0.1: a tracker, a source
// reading an ffmpeg-generated MPEG-TS file at its bitrate, the victim with a raw-TCP player, and one
// honest peer. Every attack of tools/hostile runs against the victim's peer port. Checks, after
// docs/architecture.md: the victim stays up and exits 0 at the end of the stream; a bad chunk and a
// protocol violation after the handshake ban the sender (a banned id or endpoint is refused right
// after its handshake), a violation before it only disconnects; slow handshakes and stalled readers
// are dropped at their timeouts; floods leave its memory bounded; and its player's output is the
// source input byte for byte and decodes without a warning.
#include "helpers.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#define PIXTREAM_HOSTILE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PIXTREAM_HOSTILE_TEST_ASAN 1
#endif
#endif
#ifndef PIXTREAM_HOSTILE_TEST_ASAN
#define PIXTREAM_HOSTILE_TEST_ASAN 0
#endif

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::ip::tcp;
using namespace pixtream::test;
using namespace std::chrono_literals;

namespace {

const std::string hostile_exe = PIXTREAM_HOSTILE_EXE;

constexpr bool under_asan = PIXTREAM_HOSTILE_TEST_ASAN != 0;
// The victim's resident memory: at most this much (not checked under ASan, whose shadow memory and
// quarantine dwarf it), and growing by at most this much through the floods.
constexpr std::size_t rss_limit_kib = 150 * 1024;
constexpr std::size_t rss_growth_limit_kib = 50 * 1024;

// ---- helpers (helpers.hpp has the shared ones) -------------------------------------------------------

fs::path make_ts(const fs::path& dir, int seconds) { return make_media(dir, "ts", seconds); }

// One number of a /stats reply.
double stat(const json::value& stats, const char* name) { return stats.at(name).to_number<double>(); }

// VmRSS of a process, in KiB (0 if unreadable).
std::size_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
    }
    return 0;
}

// pixtream-hostile, run against the victim; its reports once it exited.
class hostile {
public:
    hostile(std::uint16_t victim_port, const std::string& key, std::vector<std::string> args)
        : what_(describe(args)), proc_(command(victim_port, key, std::move(args))) {}

    // Waits (bounded) for the exit; the one JSON report per connection it printed.
    std::vector<json::object> reports(std::chrono::seconds limit) {
        const auto status = proc_.wait(limit);
        BOOST_TEST_REQUIRE(status.has_value(), what_ << " did not end in time");
        const auto out = proc_.stdout_text();
        BOOST_TEST_REQUIRE(*status == 0, what_ << " exited " << *status << ": " << proc_.stderr_text());
        std::vector<json::object> r;
        std::istringstream lines(out);
        for (std::string line; std::getline(lines, line);) r.push_back(json::parse(line).as_object());
        BOOST_TEST_MESSAGE(what_ << ":\n" << out);
        BOOST_TEST_REQUIRE(!r.empty(), what_ << " reported no connection");
        return r;
    }

private:
    static std::string describe(const std::vector<std::string>& args) {
        std::string s = "pixtream-hostile";
        for (const auto& a : args) s += " " + a;
        return s;
    }
    static std::vector<std::string> command(std::uint16_t port, const std::string& key, std::vector<std::string> args) {
        // A fixed seed: garbage is the same bytes on every run.
        args.insert(args.begin(),
                    {hostile_exe, "127.0.0.1:" + std::to_string(port), "--channel-key", key, "--seed", "1"});
        return args;
    }

    std::string what_;
    subprocess proc_;
};

std::vector<json::object> attack(std::uint16_t port, const std::string& key, std::vector<std::string> args,
                                 std::chrono::seconds limit = 30s) {
    return hostile(port, key, std::move(args)).reports(limit);
}

bool closed(const json::object& r) { return r.at("victim_closed").as_bool(); }
// Seconds from connecting / from the hostile frame to the victim's close (infinite if it did not close).
double seconds_of(const json::value& v) { return v.is_null() ? 1e9 : v.to_number<double>(); }
double closed_after(const json::object& r) { return seconds_of(r.at("closed_after_s")); }
double closed_after_attack(const json::object& r) { return seconds_of(r.at("closed_after_attack_s")); }

// A refused connection: the victim answered the handshake with its own, admitted nothing, closed at once.
void check_refused(const json::object& r) {
    BOOST_TEST(r.at("connected").as_bool());
    BOOST_TEST(r.at("victim_handshake").as_bool());
    BOOST_TEST(!r.at("admitted").as_bool());
    BOOST_TEST_REQUIRE(closed(r));
    BOOST_TEST(closed_after(r) < 2.0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_integration)

BOOST_AUTO_TEST_CASE(victim_survives_every_attack) {
    constexpr int seconds = 20;
    temp_dir dir;
    const auto media = make_ts(dir.path, seconds);
    const auto input = read_file(media);
    const double rate = static_cast<double>(input.size()) / seconds;

    subprocess tracker({tracker_exe, "-p", "0", "--bind", "127.0.0.1", "-i", "1", "--log-level", "warn"});
    const auto tline = tracker.read_line();
    BOOST_TEST_REQUIRE(tline.has_value());
    static const std::regex url_re(R"((http://127\.0\.0\.1:\d+))");
    std::smatch um;
    BOOST_TEST_REQUIRE(std::regex_search(*tline, um, url_re), "unexpected tracker line: " << *tline);
    const std::string tracker_url = um[1];

    subprocess source({source_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--rate", std::to_string(rate), "--key",
                       (dir.path / "key").string(), "--channel", "hostile", "--linger", "8", "--chunk-seconds", "0.25",
                       "--log-level", "warn", tracker_url, "file", media.string()});
    const auto sline = source.read_line();
    if (!sline) BOOST_FAIL("source did not start: " << source.stderr_text());
    static const std::regex key_re("channel ([0-9a-f]{64})");
    std::smatch km;
    BOOST_TEST_REQUIRE(std::regex_search(*sline, km, key_re), "no channel key in: " << *sline);
    const std::string key = km[1];

    auto start_peer = [&](const std::string& linger) {
        return std::make_unique<subprocess>(std::vector<std::string>{
            peer_exe, "-i", "127.0.0.1", "-p", "0", "-s", "0", "--buffer", "1.5", "--linger", linger, "--channel",
            "hostile", "--log-level", "warn", tracker_url});
    };
    // The victim lingers after the end of the stream until the stalled connection is surely dropped.
    auto victim = start_peer("25");
    const auto vline = victim->read_line();
    if (!vline) BOOST_FAIL("victim did not start: " << victim->stderr_text());
    const auto [victim_port, victim_player_port] = ports_of(*vline);
    auto honest = start_peer("6");
    const auto hline = honest->read_line();
    if (!hline) BOOST_FAIL("honest peer did not start: " << honest->stderr_text());

    player out;
    out.start(victim_player_port);
    if (!eventually([&] { return out.received > 0; }, 30s)) {
        BOOST_FAIL("no stream reached the victim's player: " << out.error << "; its log: " << victim->stderr_text());
    }
    auto stats = [&] { return json::parse(http_get(victim_player_port, "/stats")); };
    auto victim_alive = [&] { return !victim->wait(0ms).has_value(); };

    // A well-behaved handshake is admitted and kept: the probe works.
    const auto s0 = stats();
    for (const auto& r : attack(victim_port, key, {"--attack", "probe", "--duration", "1"})) {
        BOOST_TEST_CONTEXT("control probe") {
            BOOST_TEST(r.at("admitted").as_bool());
            BOOST_TEST(r.at("kept").as_bool());
        }
    }

    // Before the handshake there is no identity: a violation only disconnects; after it, it bans.
    const auto violations = attack(victim_port, key, {"--attack", "garbage,oversized", "--duration", "5"});
    BOOST_TEST(violations.size() == 3U);  // garbage, oversized before and after the handshake
    for (const auto& r : violations) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST_REQUIRE(closed(r));
            BOOST_TEST(closed_after_attack(r) < 2.0);
        }
    }
    const auto s1 = stats();
    BOOST_TEST(stat(s1, "protocol_errors") >= stat(s0, "protocol_errors") + 3);
    BOOST_TEST(stat(s1, "bans") == stat(s0, "bans") + 1, "only the post-handshake oversized frame bans");
    BOOST_TEST_REQUIRE(victim_alive());

    // In the background: a peer that requests chunks and stops reading, and two slow handshakes.
    hostile stall(victim_port, key, {"--attack", "stall", "--duration", "45"});
    hostile slowloris(victim_port, key, {"--attack", "slowloris", "--drip-interval", "1", "--duration", "9"});

    // Ids far outside any window are valid messages (REQUESTs REJECTed, connection kept); an id above
    // max_chunk_id and a buffer map of 65535 bits are violations.
    const auto far = attack(victim_port, key, {"--attack", "out-of-window", "--duration", "5"});
    BOOST_TEST(far.size() == 2U);  // far ids, then a bitmap too large
    for (const auto& r : far) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            if (r.at("phase") == "far-ids") {
                const auto& d = r.at("details");
                BOOST_TEST(d.at("open_after_valid_messages").as_bool());
                BOOST_TEST(d.at("rejects_before_violation").to_number<double>() == d.at("requests").to_number<double>());
            }
            BOOST_TEST_REQUIRE(closed(r));
            BOOST_TEST(closed_after_attack(r) < 2.0);
        }
    }
    const auto s2 = stats();
    BOOST_TEST(stat(s2, "protocol_errors") >= stat(s1, "protocol_errors") + 2);
    BOOST_TEST(stat(s2, "bans") >= stat(s1, "bans") + 2);

    // A forged chunk bans its sender's id and endpoint: both are refused right after the handshake.
    const std::string forger = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
    const std::string forger_port = "1";
    for (const auto& r : attack(victim_port, key,
                                {"--attack", "forged", "--peer-id", forger, "--listen-port", forger_port, "--duration", "5"})) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST(r.at("details").at("forged_id").to_number<double>() > 0);
            BOOST_TEST_REQUIRE(closed(r));
            BOOST_TEST(closed_after_attack(r) < 2.0);
        }
    }
    const auto s3 = stats();
    BOOST_TEST(stat(s3, "bad_chunks") >= 1);
    BOOST_TEST(stat(s3, "bans") >= stat(s2, "bans") + 1);
    BOOST_TEST(stat(s3, "bans") >= 1);
    for (const auto& r : attack(victim_port, key, {"--attack", "probe", "--peer-id", forger, "--duration", "3"})) {
        BOOST_TEST_CONTEXT("probe with the forger's id: " << json::serialize(r)) { check_refused(r); }
    }
    for (const auto& r : attack(victim_port, key, {"--attack", "probe", "--listen-port", forger_port, "--duration", "3"})) {
        BOOST_TEST_CONTEXT("probe from the forger's endpoint: " << json::serialize(r)) { check_refused(r); }
    }
    BOOST_TEST_REQUIRE(victim_alive());

    // Slow handshakes are dropped at the 5 s handshake timeout (docs/protocol.md), counted from connecting.
    const auto slow = slowloris.reports(30s);
    BOOST_TEST(slow.size() == 2U);  // dripping and silent
    for (const auto& r : slow) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST(!r.at("admitted").as_bool());
            BOOST_TEST(closed(r));
            BOOST_TEST(closed_after(r) < 6.5);
        }
    }
    BOOST_TEST_REQUIRE(victim_alive());

    // Floods: the request flood is banned, the HAVE flood (valid messages) is not; memory stays bounded.
    // (The stalling peer has asked for all its chunks by now: a victim busy with floods could otherwise
    // reject some of its requests and never block on it.)
    const auto rss_before = rss_kib(victim->pid());
    BOOST_TEST_REQUIRE(rss_before > 0U);
    const auto request_floods =
        attack(victim_port, key, {"--attack", "request-flood", "--connections", "4", "--flood", "5000", "--duration", "5"});
    BOOST_TEST(request_floods.size() == 4U);
    for (const auto& r : request_floods) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST_REQUIRE(closed(r));
            BOOST_TEST(closed_after_attack(r) < 2.0);
        }
    }
    const auto s4 = stats();
    BOOST_TEST(stat(s4, "bans") >= stat(s3, "bans") + 4);
    BOOST_TEST(stat(s4, "protocol_errors") >= stat(s3, "protocol_errors") + 4);
    const auto have_floods =
        attack(victim_port, key, {"--attack", "have-flood", "--connections", "4", "--flood", "100000", "--duration", "4"});
    BOOST_TEST(have_floods.size() == 4U);
    for (const auto& r : have_floods) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST(r.at("details").at("haves").to_number<double>() == 100000);
            BOOST_TEST(r.at("kept").as_bool());
        }
    }
    const auto rss_after = rss_kib(victim->pid());
    BOOST_TEST_MESSAGE("victim VmRSS before the floods " << rss_before << " KiB, after " << rss_after << " KiB");
    BOOST_TEST_REQUIRE(victim_alive());
    if (!under_asan) BOOST_TEST(rss_after < rss_limit_kib, "VmRSS " << rss_after << " KiB");
    BOOST_TEST(rss_after < rss_before + rss_growth_limit_kib, "VmRSS " << rss_before << " -> " << rss_after << " KiB");

    // The peer that stopped reading is dropped at the 30 s write timeout while the victim lives on.
    for (const auto& r : stall.reports(90s)) {
        BOOST_TEST_CONTEXT(json::serialize(r)) {
            BOOST_TEST(r.at("admitted").as_bool());
            BOOST_TEST_REQUIRE(closed(r));
            BOOST_TEST(closed_after_attack(r) > 25.0);
            BOOST_TEST(closed_after_attack(r) < 40.0);
        }
    }
    BOOST_TEST_REQUIRE(victim_alive(), "the victim exited before it dropped the stalled peer");

    // Through it all the player got the source input, byte for byte, and it decodes silently.
    out.join();
    BOOST_TEST(out.error.empty(), out.error);
    const auto final_stats = stats();
    BOOST_TEST(stat(final_stats, "chunks_skipped") == 0.0);
    // Nothing skipped, and (below) the output is exact. Every chunk on time too, except under ASan:
    // there the victim and the attackers run several times slower on two cores, and a few chunks of
    // 0.25 s come more than the 200 ms late tolerance after their due time (3-5 of 79 seen).
    if (under_asan) {
        BOOST_TEST(stat(final_stats, "continuity") >= 0.9);
    } else {
        BOOST_TEST(stat(final_stats, "continuity") == 1.0);
    }
    BOOST_TEST_MESSAGE("victim /stats at the end: " << json::serialize(final_stats));
    BOOST_TEST_REQUIRE(out.data.size() > input.size() / 2, "only " << out.data.size() << " of " << input.size() << " bytes");
    // It skipped nothing: the input from where the player joined (in the first half) to the end, no
    // byte missing, behind the replayed header chunk if it joined late.
    const auto m = match_output(out.data, input);
    BOOST_TEST(m.exact(), m.describe());
    BOOST_TEST(m.start < input.size() / 2, m.describe());
    const auto file = dir.path / "out.ts";
    std::ofstream(file, std::ios::binary) << out.data;
    int status = 0;
    const auto warnings = run_ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"}, status);
    BOOST_TEST(status == 0);
    BOOST_TEST(warnings.empty(), "ffmpeg says: " << warnings);

    BOOST_TEST(victim->wait(60s).value_or(-1) == 0);
    BOOST_TEST(honest->wait(30s).value_or(-1) == 0);
    BOOST_TEST(source.wait(30s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
