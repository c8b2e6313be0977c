#include "pixtream/tracker/http_api.hpp"

#include "pixtream/tracker/announce_request.hpp"
#include "pixtream/tracker/server.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <fmt/format.h>

namespace pixtream::tracker {
namespace {

http_reply json_reply(const boost::json::value& v) { return {200, "application/json", boost::json::serialize(v)}; }

http_reply announce(std::string_view target, const std::string& ip, registry& reg, core::time_point now) {
    const auto parsed = parse_announce(target, reg.config().max_numwant);
    if (const auto* err = std::get_if<parse_error>(&parsed)) return error_reply(400, err->reason);
    std::error_code ec;
    const auto result = reg.announce(std::get<announce_params>(parsed), ip, now, ec);
    if (!result) return error_reply(ec == errc::unknown_channel ? 400 : 503, ec.message());
    // The hot path: written straight into one buffer. Every field is hex, an IP address in text form
    // or an integer, so nothing needs escaping.
    fmt::memory_buffer out;
    fmt::format_to(std::back_inserter(out), "{{\"interval\":{},\"peers\":[", core::to_seconds(result->interval));
    bool first = true;
    for (const auto& p : result->peers) {
        fmt::format_to(std::back_inserter(out), "{}{{\"id\":\"{}\",\"ip\":\"{}\",\"port\":{}}}", first ? "" : ",",
                       p.id.to_hex(), p.ip, p.port);
        first = false;
    }
    fmt::format_to(std::back_inserter(out), "]}}");
    return {200, "application/json", fmt::to_string(out)};
}

http_reply channels(const registry& reg) {
    boost::json::array out;
    for (const auto& c : reg.channels()) {
        out.push_back(boost::json::object{
            {"key", c.key.to_hex()}, {"name", c.name}, {"peers", c.peers}, {"source", c.has_source}});
    }
    return json_reply(boost::json::object{{"channels", std::move(out)}});
}

http_reply stats(const registry& reg, const server_counters& c, core::duration uptime) {
    const auto s = reg.stats();
    return json_reply(boost::json::object{
        {"uptime_s", core::to_seconds(uptime)},
        {"channels", s.channels},
        {"peers", s.peers},
        {"announces", s.announces},
        {"started", s.started},
        {"stopped", s.stopped},
        {"rejected", s.rejected},
        {"expired", s.expired},
        {"http_requests", c.http_requests},
        {"bad_requests", c.bad_requests},
        {"timeouts", c.timeouts},
        {"refused_connections", c.refused_connections},
        {"connections", c.connections},
    });
}

// Prometheus text exposition format, version 0.0.4.
http_reply metrics(const registry& reg, const server_counters& c, core::duration uptime) {
    const auto s = reg.stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, auto value) {
        out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
    };
    metric("pixtream_tracker_uptime_seconds", "gauge", "Seconds since the tracker started.", core::to_seconds(uptime));
    metric("pixtream_tracker_channels", "gauge", "Channels with at least one peer.", s.channels);
    metric("pixtream_tracker_peers", "gauge", "Peers across all channels.", s.peers);
    metric("pixtream_tracker_announces_total", "counter", "Announce requests that reached the registry.", s.announces);
    metric("pixtream_tracker_announces_rejected_total", "counter", "Announces refused (unknown channel, full).", s.rejected);
    metric("pixtream_tracker_peers_expired_total", "counter", "Peers dropped after silence.", s.expired);
    metric("pixtream_tracker_http_requests_total", "counter", "HTTP requests parsed.", c.http_requests);
    metric("pixtream_tracker_http_bad_requests_total", "counter", "Requests answered with a 4xx status.", c.bad_requests);
    metric("pixtream_tracker_http_timeouts_total", "counter", "Connections timed out while reading.", c.timeouts);
    metric("pixtream_tracker_connections", "gauge", "Open HTTP connections.", c.connections);
    out += "# HELP pixtream_tracker_channel_peers Peers in one channel.\n# TYPE pixtream_tracker_channel_peers gauge\n";
    for (const auto& ch : reg.channels()) {
        std::string name;
        for (char ch_c : ch.name) {  // label values escape backslash, quote and newline
            if (ch_c == '\\' || ch_c == '"') name += '\\';
            name += ch_c == '\n' ? 'n' : ch_c;
        }
        out += fmt::format("pixtream_tracker_channel_peers{{channel=\"{}\",name=\"{}\"}} {}\n", ch.key.to_hex(), name,
                           ch.peers);
    }
    return {200, "text/plain; version=0.0.4", std::move(out)};
}

}  // namespace

http_reply error_reply(unsigned status, std::string_view reason) {
    // Reasons may quote the request: keep the body valid JSON (UTF-8) whatever bytes it held.
    std::string text(reason);
    for (auto& ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7F) ch = '?';
    }
    return {status, "application/json", boost::json::serialize(boost::json::object{{"error", text}})};
}

http_reply handle_request(std::string_view method, std::string_view target, const std::string& client_ip,
                          registry& reg, const server_counters& counters, core::time_point now,
                          core::duration uptime) {
    if (method != "GET") return error_reply(405, "only GET is supported");
    const auto url = boost::urls::parse_origin_form(target);
    if (!url) return error_reply(400, "malformed request target");
    const auto path = url->path();
    if (path == "/announce") return announce(target, client_ip, reg, now);
    if (path == "/channels") return channels(reg);
    if (path == "/stats") return stats(reg, counters, uptime);
    if (path == "/metrics") return metrics(reg, counters, uptime);
    return error_reply(404, "no such endpoint; try /announce, /channels, /stats or /metrics");
}

}  // namespace pixtream::tracker
