#include "subprocess.hpp"
#include "tracker_fixture.hpp"

#include <boost/test/unit_test.hpp>

using pixtream::test::subprocess;
using namespace pixtream::tracker::test;
using namespace std::chrono_literals;

namespace {

const std::string exe = PIXTREAM_TRACKER_EXE;

// Starts a tracker on a free port and returns the port it printed.
std::uint16_t start(subprocess& p) {
    const auto line = p.read_line();
    BOOST_TEST_REQUIRE(line.has_value(), "the tracker printed no address");
    const auto colon = line->rfind(':');
    BOOST_TEST_REQUIRE(line->starts_with("pixtream-tracker listening on http://127.0.0.1:"), *line);
    return static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tracker_program)

BOOST_AUTO_TEST_CASE(help_explains_every_option) {
    subprocess p({exe, "--help"});
    BOOST_TEST(p.wait().value_or(-1) == 0);
    const auto out = p.stdout_text();
    for (const char* opt : {"--port", "--interval", "--bind", "--max-channels", "--max-peers-per-channel",
                            "--max-numwant", "--max-connections", "--read-timeout", "--log-level", "/announce",
                            "/metrics"}) {
        BOOST_TEST_CONTEXT(opt) { BOOST_TEST(out.find(opt) != std::string::npos); }
    }
}

BOOST_AUTO_TEST_CASE(bad_options_are_usage_errors) {
    const std::pair<std::vector<std::string>, std::string> cases[] = {
        {{exe, "--bogus"}, "unrecognised option '--bogus'"},
        {{exe, "-p", "70000"}, "is invalid"},
        {{exe, "-i", "0"}, "--interval must be between 0.1 and 3600 seconds"},
        {{exe, "--bind", "nowhere"}, "--bind 'nowhere' is not an IP address"},
        {{exe, "--log-level", "loud"}, "unknown --log-level 'loud'"},
    };
    for (const auto& [args, msg] : cases) {
        BOOST_TEST_CONTEXT(args[1]) {
            subprocess p(args);
            BOOST_TEST(p.wait().value_or(-1) == 2);
            const auto err = p.stderr_text();
            BOOST_TEST(err.find(msg) != std::string::npos, err);
            BOOST_TEST(err.find("Try 'pixtream-tracker --help'") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(serves_announces_and_stops_on_sigterm) {
    subprocess p({exe, "-p", "0", "--bind", "127.0.0.1", "-i", "2"});
    const auto port = start(p);
    auto r = get(port, "/announce?channel=" + std::string(64, '1') + "&peer_id=" + std::string(40, '2') +
                           "&port=1234&event=started&source=1&name=live");
    BOOST_TEST(r.status == 200, r.body);
    BOOST_TEST(r.json().at("interval").to_number<double>() == 2.0);
    r = get(port, "/channels");
    BOOST_TEST(r.json().at("channels").as_array()[0].at("name").as_string() == "live");

    // A second tracker on the same port fails with a clear message.
    subprocess clash({exe, "-p", std::to_string(port), "--bind", "127.0.0.1"});
    BOOST_TEST(clash.wait().value_or(-1) == 1);
    const auto err = clash.stderr_text();
    BOOST_TEST(err.find("cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use") !=
               std::string::npos, err);

    p.signal(SIGTERM);
    BOOST_TEST(p.wait().value_or(-1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
