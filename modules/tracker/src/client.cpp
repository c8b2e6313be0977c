#include "pixtream/tracker/client.hpp"

#include "pixtream/tracker/announce_request.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pixtream::tracker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_reply_bytes = 1 << 20;

std::optional<announce_reply> parse_reply(std::string_view body, std::string& error) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) {
        error = "tracker reply is not a JSON object";
        return std::nullopt;
    }
    const auto& o = v.get_object();
    const auto* interval = o.if_contains("interval");
    const auto* peers = o.if_contains("peers");
    if (!interval || !interval->is_number() || !peers || !peers->is_array()) {
        error = "tracker reply lacks 'interval' or 'peers'";
        return std::nullopt;
    }
    const double secs = interval->to_number<double>(ec);
    if (ec || !(secs >= 0.1)) {
        error = "tracker reply has an invalid 'interval'";
        return std::nullopt;
    }
    announce_reply r{core::from_seconds(std::min(secs, 86400.0)), {}};
    for (const auto& p : peers->get_array()) {
        const auto* po = p.if_object();
        if (!po) continue;
        const auto* id = po->if_contains("id");
        const auto* ip = po->if_contains("ip");
        const auto* port = po->if_contains("port");
        if (!id || !id->is_string() || !ip || !ip->is_string() || !port || !port->is_int64()) continue;
        const auto pid = core::peer_id::from_hex(id->get_string());
        const auto port_v = port->get_int64();
        boost::system::error_code aec;
        asio::ip::make_address(std::string_view(ip->get_string()), aec);
        if (!pid || aec || port_v <= 0 || port_v > 65535) continue;  // skip malformed entries, keep the rest
        r.peers.push_back(peer_endpoint{*pid, std::string(ip->get_string()), static_cast<std::uint16_t>(port_v)});
    }
    return r;
}

}  // namespace

std::optional<tracker_url> parse_tracker_url(std::string_view text, std::string& error) {
    const auto u = boost::urls::parse_absolute_uri(text);
    if (!u) {
        error = "not an absolute URL (expected http://HOST[:PORT])";
        return std::nullopt;
    }
    if (u->scheme() != "http") {
        error = "only http:// tracker URLs are supported";
        return std::nullopt;
    }
    if (u->host().empty()) {
        error = "URL has no host";
        return std::nullopt;
    }
    tracker_url t;
    t.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->encoded_host_address()) : std::string(u->host());
    if (t.host.size() > 2 && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
    if (u->has_port()) {
        if (u->port_number() == 0) {
            error = "URL has an invalid port";
            return std::nullopt;
        }
        t.port = std::to_string(u->port_number());
    }
    t.prefix = std::string(u->encoded_path());
    if (!t.prefix.empty() && t.prefix.front() != '/') {  // Boost.URL takes "http://[::1]x" as path "x"
        error = "URL path must start with /";
        return std::nullopt;
    }
    while (!t.prefix.empty() && t.prefix.back() == '/') t.prefix.pop_back();
    if (t.prefix.ends_with("/announce")) t.prefix.resize(t.prefix.size() - 9);  // accept the announce URL itself
    t.text = std::string(text);
    return t;
}

asio::awaitable<std::variant<std::string, std::string>> http_get(tracker_url url, std::string path,
                                                                 core::duration timeout) {
    using result = std::variant<std::string, std::string>;
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    beast::tcp_stream stream(ex);
    stream.expires_after(timeout);
    // The resolver has no deadline of its own: the whole exchange shares one via the stream timer
    // for connect/read/write; name lookups for IP literals do not block.
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, use_tuple);
    if (rec) co_return result{std::in_place_index<1>, "cannot resolve " + url.host + ": " + rec.message()};
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    if (cec) co_return result{std::in_place_index<1>, "cannot connect to " + url.text + ": " + cec.message()};
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "pixtream");
    req.keep_alive(false);
    auto [wec, w] = co_await http::async_write(stream, req, use_tuple);
    if (wec) co_return result{std::in_place_index<1>, "cannot send to " + url.text + ": " + wec.message()};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_reply_bytes);
    auto [hec, r] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (hec) co_return result{std::in_place_index<1>, "no reply from " + url.text + ": " + hec.message()};
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    auto& res = parser.get();
    if (res.result() != http::status::ok) {
        std::string reason = std::to_string(res.result_int());
        boost::system::error_code jec;
        const auto v = boost::json::parse(res.body(), jec);
        if (!jec && v.is_object() && v.get_object().contains("error") && v.at("error").is_string())
            reason += " " + std::string(v.at("error").get_string());
        co_return result{std::in_place_index<1>, "tracker " + url.text + " answered " + reason};
    }
    co_return result{std::in_place_index<0>, std::move(res.body())};
}

asio::awaitable<std::variant<announce_reply, std::string>> announce_once(tracker_url url, announce_params params,
                                                                         core::duration timeout) {
    using result = std::variant<announce_reply, std::string>;
    const std::string path = url.prefix + "/announce?" + announce_query(params);
    auto got = co_await http_get(url, path, timeout);
    if (got.index() == 1) co_return result{std::in_place_index<1>, std::move(std::get<1>(got))};
    std::string error;
    auto reply = parse_reply(std::get<0>(got), error);
    if (!reply) co_return result{std::in_place_index<1>, url.text + ": " + error};
    co_return result{std::in_place_index<0>, std::move(*reply)};
}

client::client(const asio::any_io_executor& ex, client_config cfg, peers_handler on_peers)
    : cfg_(std::move(cfg)), on_peers_(std::move(on_peers)), timer_(ex), rng_(cfg_.seed) {}

void client::stop() {
    stopping_ = true;
    timer_.cancel();
}

void client::announce_now() { timer_.cancel(); }

asio::awaitable<void> client::run() {
    if (cfg_.urls.empty()) co_return;
    bool started = false;
    core::duration backoff = cfg_.min_backoff;
    while (!stopping_) {
        auto params = cfg_.params;
        params.ev = started ? event::none : event::started;
        const auto& url = cfg_.urls[status_.current_url];
        auto got = co_await announce_once(url, params, cfg_.timeout);
        core::duration wait;
        if (auto* reply = std::get_if<announce_reply>(&got)) {
            started = true;
            ++status_.announces_ok;
            status_.consecutive_failures = 0;
            backoff = cfg_.min_backoff;
            wait = std::min(reply->interval, cfg_.max_interval);
            if (on_peers_) on_peers_(reply->peers);
        } else {
            ++status_.failures;
            ++status_.consecutive_failures;
            status_.last_error = std::get<std::string>(got);
            spdlog::warn("tracker: {}", status_.last_error);
            if (on_error_) on_error_(status_.last_error);
            // Try the next tracker at once; after a full round of failures, back off.
            status_.current_url = (status_.current_url + 1) % cfg_.urls.size();
            if (status_.consecutive_failures % cfg_.urls.size() != 0) continue;
            const double jitter = std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
            wait = core::from_seconds(core::to_seconds(backoff) * jitter);
            backoff = std::min(backoff * 2, cfg_.max_backoff);
        }
        if (stopping_) break;
        timer_.expires_after(wait);
        co_await timer_.async_wait(use_tuple);  // cancelled by stop() or announce_now()
    }
    if (started) {
        auto params = cfg_.params;
        params.ev = event::stopped;
        co_await announce_once(cfg_.urls[status_.current_url], params, std::min(cfg_.timeout, core::duration(core::seconds(2))));
    }
}

}  // namespace pixtream::tracker
