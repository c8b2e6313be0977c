// libFuzzer target: the tracker's request parsing, with a registry behind it.
//   input := line ("\n" line)*
// Each line is used three ways, one second apart on a fake clock:
//   1. as a GET request target, through tracker::parse_announce and tracker::handle_request (the
//      registry is shared by all lines of one input and expired before each, as the server does);
//   2. as a tracker URL, through tracker::parse_tracker_url.
// Properties checked:
//   - parse_announce accepts only what docs/architecture.md allows, and what it accepts round-trips
//     through announce_query (the tracker client's side);
//   - every reply has a known status and a JSON body that parses (an object, with "error" on failure);
//     an announce reply never lists the caller, nor more peers than asked for;
//   - the registry keeps its caps and its counts agree;
//   - a URL parse_tracker_url accepts gives a host, a port and announce targets the tracker can parse.
#include "fuzz_support.hpp"

#include "pixtream/tracker/announce_request.hpp"
#include "pixtream/tracker/client.hpp"
#include "pixtream/tracker/http_api.hpp"
#include "pixtream/tracker/registry.hpp"
#include "pixtream/tracker/server.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <charconv>

using namespace pixtream;

namespace {

tracker::registry_config fuzz_registry_config() {
    tracker::registry_config cfg;
    cfg.interval = core::seconds(1);  // peers expire after 7 s: 7 lines
    cfg.max_channels = 3;
    cfg.max_peers_per_channel = 5;
    cfg.max_numwant = tracker::default_numwant + 10;  // no less than the default, as in every real config
    cfg.seed = 1;
    return cfg;
}

const std::array<std::string, 3> client_ips{"192.0.2.1", "2001:db8::7", "198.51.100.23"};

bool printable(std::string_view s) {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) return false;
    }
    return true;
}

bool same(const tracker::announce_params& a, const tracker::announce_params& b) {
    return a.channel == b.channel && a.peer == b.peer && a.port == b.port && a.ev == b.ev && a.numwant == b.numwant &&
           a.is_source == b.is_source && a.name == b.name;
}

// parse_announce: limits, and the round trip through the client's query string.
std::optional<tracker::announce_params> check_announce_parse(std::string_view target, std::size_t max_numwant) {
    const auto parsed = tracker::parse_announce(target, max_numwant);
    if (const auto* err = std::get_if<tracker::parse_error>(&parsed)) {
        PIXTREAM_FUZZ_CHECK(!err->reason.empty());
        return std::nullopt;
    }
    const auto& p = std::get<tracker::announce_params>(parsed);
    PIXTREAM_FUZZ_CHECK(p.port != 0);
    PIXTREAM_FUZZ_CHECK(p.numwant <= max_numwant);
    if (p.name) PIXTREAM_FUZZ_CHECK(!p.name->empty() && p.name->size() <= tracker::max_name_length && printable(*p.name));

    const auto query = tracker::announce_query(p);
    const auto again = tracker::parse_announce("/announce?" + query, max_numwant);
    PIXTREAM_FUZZ_CHECK(std::holds_alternative<tracker::announce_params>(again));
    PIXTREAM_FUZZ_CHECK(same(std::get<tracker::announce_params>(again), p));
    return p;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80 ? 1 : (c & 0xE0U) == 0xC0 ? 2 : (c & 0xF0U) == 0xE0 ? 3 : (c & 0xF8U) == 0xF0 ? 4 : 0;
        if (n == 0) return false;
        std::uint32_t cp = n == 1 ? c : c & (0x7FU >> n);
        if (i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0U) != 0x80) return false;
            cp = (cp << 6U) | (cc & 0x3FU);
        }
        const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

// The body of a JSON reply: parses, and is an object.
boost::json::object json_body(const tracker::http_reply& r) {
    PIXTREAM_FUZZ_CHECK(r.content_type == "application/json");
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    PIXTREAM_FUZZ_CHECK(!ec);
    PIXTREAM_FUZZ_CHECK(v.is_object());
    return std::move(v.get_object());
}

void check_reply(std::string_view target, const std::optional<tracker::announce_params>& params,
                 const tracker::http_reply& r, const tracker::registry& reg) {
    const auto url = boost::urls::parse_origin_form(target);
    const std::string path = url ? std::string(url->path()) : std::string();
    const bool metrics = url && path == "/metrics";

    if (metrics && r.status == 200) {
        PIXTREAM_FUZZ_CHECK(r.content_type.starts_with("text/plain"));
        PIXTREAM_FUZZ_CHECK(!r.body.empty() && r.body.back() == '\n');
        return;
    }
    // JSON bodies are UTF-8 (RFC 8259), whatever the request held (found by this target: "name=%ea").
    PIXTREAM_FUZZ_CHECK(valid_utf8(r.body));
    const auto body = json_body(r);
    if (r.status != 200) {
        PIXTREAM_FUZZ_CHECK(r.status == 400 || r.status == 404 || r.status == 503);
        PIXTREAM_FUZZ_CHECK(body.contains("error") && body.at("error").is_string());
    }
    if (!url) {
        PIXTREAM_FUZZ_CHECK(r.status == 400);
        return;
    }
    if (path == "/announce") {
        if (!params) {
            PIXTREAM_FUZZ_CHECK(r.status == 400);
            return;
        }
        if (r.status != 200) return;  // unknown channel, channel full, too many channels
        PIXTREAM_FUZZ_CHECK(body.contains("interval") && body.at("interval").is_number());
        PIXTREAM_FUZZ_CHECK(body.contains("peers") && body.at("peers").is_array());
        const auto& peers = body.at("peers").get_array();
        PIXTREAM_FUZZ_CHECK(peers.size() <= params->numwant);
        if (params->ev == tracker::event::stopped) PIXTREAM_FUZZ_CHECK(peers.empty());
        const auto self = params->peer.to_hex();
        for (const auto& p : peers) {
            const auto& o = p.as_object();
            PIXTREAM_FUZZ_CHECK(o.at("id").as_string() != self);
            const auto port = o.at("port").as_int64();
            PIXTREAM_FUZZ_CHECK(port >= 1 && port <= 65535);
        }
        return;
    }
    if (path == "/channels") {
        PIXTREAM_FUZZ_CHECK(r.status == 200);
        PIXTREAM_FUZZ_CHECK(body.at("channels").as_array().size() == reg.stats().channels);
        return;
    }
    if (path == "/stats") {
        PIXTREAM_FUZZ_CHECK(r.status == 200);
        PIXTREAM_FUZZ_CHECK(body.at("peers").as_int64() == static_cast<std::int64_t>(reg.stats().peers));
        return;
    }
    if (!metrics) PIXTREAM_FUZZ_CHECK(r.status == 404);
}

void check_registry(const tracker::registry& reg) {
    const auto stats = reg.stats();
    const auto channels = reg.channels();
    PIXTREAM_FUZZ_CHECK(channels.size() == stats.channels);
    PIXTREAM_FUZZ_CHECK(stats.channels <= reg.config().max_channels);
    std::size_t peers = 0;
    for (const auto& c : channels) {
        PIXTREAM_FUZZ_CHECK(c.peers >= 1 && c.peers <= reg.config().max_peers_per_channel);
        PIXTREAM_FUZZ_CHECK(reg.find_channel(c.key).has_value());
        peers += c.peers;
    }
    PIXTREAM_FUZZ_CHECK(peers == stats.peers);
}

tracker::announce_params sample_params() {
    tracker::announce_params p;
    p.channel = *core::channel_key::from_hex(std::string(64, 'c'));
    p.peer = *core::peer_id::from_hex(std::string(40, 'd'));
    p.port = 60001;
    p.ev = tracker::event::started;
    p.name = "fuzz";
    return p;
}

void check_tracker_url(std::string_view text) {
    std::string error;
    const auto url = tracker::parse_tracker_url(text, error);
    if (!url) {
        PIXTREAM_FUZZ_CHECK(!error.empty());
        return;
    }
    PIXTREAM_FUZZ_CHECK(url->text == text);
    PIXTREAM_FUZZ_CHECK(!url->host.empty());
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(url->port.data(), url->port.data() + url->port.size(), port);
    PIXTREAM_FUZZ_CHECK(ec == std::errc{} && end == url->port.data() + url->port.size());
    PIXTREAM_FUZZ_CHECK(port >= 1 && port <= 65535);
    PIXTREAM_FUZZ_CHECK(url->prefix.empty() || url->prefix.front() == '/');
    // What the client sends: prefix + "/announce?" + query. The tracker must be able to parse it.
    const auto target = url->prefix + "/announce?" + tracker::announce_query(sample_params());
    PIXTREAM_FUZZ_CHECK(boost::urls::parse_origin_form(target).has_value());
    PIXTREAM_FUZZ_CHECK(std::holds_alternative<tracker::announce_params>(tracker::parse_announce(target, 50)));
}

std::vector<fuzz::seed> make_seeds() {
    auto params = sample_params();
    const auto source = [&] {
        auto p = params;
        p.is_source = true;
        p.peer = *core::peer_id::from_hex(std::string(40, '1'));
        p.name = "news & weather / 24h";
        return p;
    }();
    auto viewer = [&](char id, tracker::event ev, std::size_t numwant) {
        auto p = params;
        p.peer = *core::peer_id::from_hex(std::string(40, id));
        p.ev = ev;
        p.numwant = numwant;
        p.name.reset();
        p.port = static_cast<std::uint16_t>(61000 + id);
        return "/announce?" + tracker::announce_query(p);
    };
    const auto join = "/announce?" + tracker::announce_query(source) + "\n" +
                      viewer('2', tracker::event::started, 50) + "\n" + viewer('3', tracker::event::none, 1) + "\n";

    std::vector<fuzz::seed> seeds;
    auto add = [&](std::string name, const std::string& text) {
        seeds.push_back({std::move(name), fuzz::seed_writer{}.text(text).take()});
    };
    add("announce-source", "/announce?" + tracker::announce_query(source));
    add("swarm", join + viewer('4', tracker::event::started, 2) + "\n/channels\n/stats\n/metrics\n" +
                     viewer('2', tracker::event::stopped, 0) + "\n/stats");
    add("channel-full", join + viewer('4', tracker::event::started, 3) + "\n" + viewer('5', tracker::event::started, 3) +
                            "\n" + viewer('6', tracker::event::started, 3) + "\n/channels");
    add("expiry", join + "/stats\n/stats\n/stats\n/stats\n/stats\n/stats\n/stats\n/stats\n/channels");
    add("unknown-channel", viewer('7', tracker::event::started, 5));
    add("bad-requests",
        "/announce?channel=zz\n/announce?port=0\n/announce?numwant=61\n/announce?port=1&port=2\n/nowhere\n"
        "announce\n/announce?name=%01&source=2&event=paused\n/%61nnounce?numwant=1\n");
    add("tracker-urls", "http://127.0.0.1:8080\nhttp://tracker.example/pix/announce\nhttp://[::1]:9/\n"
                        "https://x\nhttp://h:0\nhttp:///nohost\n");
    return seeds;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    fuzz::handle_write_seeds(*argc, *argv, make_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    tracker::registry reg(fuzz_registry_config());
    const tracker::server_counters counters;
    const auto start = core::time_point{};
    for (std::size_t line_no = 0;; ++line_no) {
        const auto eol = input.find('\n');
        const auto line = input.substr(0, eol);
        const auto now = start + core::seconds(static_cast<std::int64_t>(line_no));
        reg.expire(now);

        const auto params = check_announce_parse(line, reg.config().max_numwant);
        const auto reply = tracker::handle_request("GET", line, client_ips[line_no % client_ips.size()], reg, counters,
                                                   now, now - start);
        check_reply(line, params, reply, reg);
        check_registry(reg);
        check_tracker_url(line);

        if (eol == std::string_view::npos) break;
        input.remove_prefix(eol + 1);
    }
    return 0;
}
