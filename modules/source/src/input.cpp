#include "pixtream/source/input.hpp"

#include "pixtream/core/rate_meter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

namespace pixtream::source {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view url_form = "http://HOST[:PORT][/PATH]";

std::string errno_message(int e) { return std::error_code(e, std::generic_category()).message(); }

// Seconds for messages: "0.6", "0.02", "10", "30".
std::string seconds_text(core::duration d) {
    const double s = core::to_seconds(d);
    return s < 10 ? fmt::format("{:.2g}", s) : fmt::format("{:.0f}", s);
}

std::optional<std::string> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || p != end || value < 1 || value > 65535) return std::nullopt;
    return std::to_string(value);
}

struct network_address {
    std::string host;       // to resolve: no brackets around an IPv6 address
    std::string port;
    std::string target;     // http only
    std::string authority;  // http only: the Host header
};

std::optional<network_address> parse_tcp_address(std::string_view text, std::string& error) {
    const std::string_view given = text;
    if (text.starts_with("tcp://")) text.remove_prefix(6);
    network_address a;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = fmt::format("tcp input must be HOST:PORT or [IPV6]:PORT (got '{}')", given);
            return std::nullopt;
        }
        a.host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = fmt::format("tcp input must be HOST:PORT (got '{}')", given);
            return std::nullopt;
        }
        a.host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (a.host.find(':') != std::string::npos) {
            error = fmt::format("write an IPv6 address in brackets, [ADDRESS]:PORT (got '{}')", given);
            return std::nullopt;
        }
    }
    if (a.host.empty()) {
        error = fmt::format("tcp input must be HOST:PORT (got '{}'): the host is missing", given);
        return std::nullopt;
    }
    auto p = parse_port(port);
    if (!p) {
        error = fmt::format("invalid port '{}' in '{}' (expected 1 to 65535)", port, given);
        return std::nullopt;
    }
    a.port = std::move(*p);
    return a;
}

std::optional<network_address> parse_http_url(std::string_view text, std::string& error) {
    const auto u = boost::urls::parse_uri(text);
    if (!u) {
        error = fmt::format("'{}' is not a URL (expected {})", text, url_form);
        return std::nullopt;
    }
    if (u->scheme_id() != boost::urls::scheme::http) {
        if (u->scheme_id() == boost::urls::scheme::https)
            error = fmt::format("https is not supported (expected {}, got '{}')", url_form, text);
        else
            error = fmt::format("unsupported URL scheme '{}' (expected {})", u->scheme(), url_form);
        return std::nullopt;
    }
    if (!u->has_authority() || u->encoded_host().empty()) {
        error = fmt::format("URL '{}' has no host (expected {})", text, url_form);
        return std::nullopt;
    }
    network_address a;
    a.host = std::string(u->encoded_host_address());
    a.port = "80";
    if (u->has_port()) {
        auto p = parse_port(u->port());
        if (!p) {
            error = fmt::format("invalid port '{}' in '{}' (expected 1 to 65535)", u->port(), text);
            return std::nullopt;
        }
        a.port = std::move(*p);
    }
    a.target = std::string(u->encoded_target());
    if (a.target.empty() || a.target.front() != '/') a.target.insert(0, "/");
    a.authority = std::string(u->encoded_host_and_port());
    return a;
}

// [ADDRESS:]PORT to bind (the address 0.0.0.0 when left out; an optional tcp:// or udp:// prefix).
std::optional<asio::ip::basic_endpoint<asio::ip::tcp>> parse_bind_address(std::string_view text, bool udp, std::string& error) {
    const std::string_view given = text;
    const std::string_view prefix = udp ? "udp://" : "tcp://";
    if (text.starts_with(prefix)) text.remove_prefix(prefix.size());
    std::string host = "0.0.0.0";
    std::string_view port = text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = fmt::format("input must be [ADDRESS:]PORT (got '{}')", given);
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
    } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
        host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (host.empty()) host = "0.0.0.0";
    }
    const auto p = parse_port(port);
    if (!p) {
        error = fmt::format("invalid port '{}' in '{}' (expected 1 to 65535)", port, given);
        return std::nullopt;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        error = fmt::format("'{}' in '{}' is not an IP address", host, given);
        return std::nullopt;
    }
    if (!udp && address.is_multicast()) {
        error = fmt::format("cannot listen for TCP on the multicast address {} (got '{}')", host, given);
        return std::nullopt;
    }
    return asio::ip::basic_endpoint<asio::ip::tcp>(address, static_cast<std::uint16_t>(std::stoi(*p)));
}

// Opens `path` the way the reader will (never blocking on a FIFO without a writer); -1 with `error` set.
int open_input_file(const std::string& path, std::string& error) {
    if (path.empty()) {
        error = "missing input file name";
        return -1;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        error = fmt::format("cannot open input file '{}': {}", path, errno_message(errno));
        return -1;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        const int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        ::close(fd);
        error = fmt::format("cannot open input file '{}': {}", path, errno_message(e));
        return -1;
    }
    return fd;
}

// A data event with the first n bytes of buf: moved when it is mostly full, else copied so that a
// consumer keeping events does not keep a read buffer's worth of capacity for a few bytes.
input_event data_event(std::vector<std::byte>& buf, std::size_t n) {
    input_event ev;
    if (n >= buf.size() / 2) {
        buf.resize(n);
        ev.bytes = std::move(buf);
    } else {
        ev.bytes.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return ev;
}

input_event make_event(input_event_kind kind, std::string message) {
    input_event ev;
    ev.kind = kind;
    ev.message = std::move(message);
    return ev;
}

}  // namespace

std::string_view to_string(input_kind k) noexcept {
    switch (k) {
    case input_kind::http: return "http";
    case input_kind::tcp: return "tcp";
    case input_kind::file: return "file";
    case input_kind::stdin_: return "stdin";
    case input_kind::listen: return "listen";
    case input_kind::udp: return "udp";
    case input_kind::icecast: return "icecast";
    }
    return "?";
}

std::string_view to_string(input_event_kind k) noexcept {
    switch (k) {
    case input_event_kind::data: return "data";
    case input_event_kind::disconnected: return "disconnected";
    case input_event_kind::reconnected: return "reconnected";
    case input_event_kind::ended: return "ended";
    case input_event_kind::failed: return "failed";
    }
    return "?";
}

std::optional<input_config> parse_input(std::string_view kind, std::string_view location, std::string& error) {
    input_config cfg;
    cfg.location = std::string(location);
    if (kind == "http") {
        cfg.kind = input_kind::http;
        if (!parse_http_url(location, error)) return std::nullopt;
    } else if (kind == "tcp") {
        cfg.kind = input_kind::tcp;
        if (!parse_tcp_address(location, error)) return std::nullopt;
    } else if (kind == "file") {
        cfg.kind = input_kind::file;
        const int fd = open_input_file(cfg.location, error);
        if (fd < 0) return std::nullopt;
        ::close(fd);
    } else if (kind == "stdin") {
        cfg.kind = input_kind::stdin_;
        if (!location.empty() && location != "-") {
            error = fmt::format("stdin input takes '-' as its source (got '{}')", location);
            return std::nullopt;
        }
        cfg.location = "-";
    } else if (kind == "listen" || kind == "udp" || kind == "icecast") {
        cfg.kind = kind == "listen" ? input_kind::listen : kind == "udp" ? input_kind::udp : input_kind::icecast;
        if (!parse_bind_address(location, kind == "udp", error)) return std::nullopt;
    } else {
        error = fmt::format("unknown input kind '{}' (expected http, tcp, file, stdin, listen, udp or icecast)", kind);
        return std::nullopt;
    }
    return cfg;
}

// What one connection attempt came to.
struct input_reader::attempt_result {
    bool connected = false;  // the connection was up (and, for HTTP, answered 2xx)
    bool got_data = false;
    std::string reason;      // why it failed or ended
};

input_reader::input_reader(const asio::any_io_executor& ex, input_config cfg)
    : cfg_(std::move(cfg)),
      timer_(ex),
      resolver_(ex),
      stream_(ex),
      descriptor_(ex),
      acceptor_(ex),
      udp_(ex),
      rng_(cfg_.seed != 0 ? cfg_.seed : std::random_device{}()),
      backoff_(cfg_.min_backoff) {}

input_reader::~input_reader() { close_descriptor(); }

void input_reader::stop() {
    stopping_ = true;
    timer_.cancel();
    resolver_.cancel();
    stream_.close();
    close_descriptor();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    udp_.close(ignored);
}

void input_reader::close_descriptor() noexcept {
    if (!descriptor_.is_open()) return;
    boost::system::error_code ignored;
    if (saved_flags_) {
        // O_NONBLOCK belongs to the open file description, which our duplicate shares with the
        // caller's descriptor (a terminal, say): put it back as it was.
        ::fcntl(descriptor_.native_handle(), F_SETFL, *saved_flags_);
        saved_flags_.reset();
    }
    descriptor_.close(ignored);
}

core::duration input_reader::next_backoff() {
    const auto lo = cfg_.min_backoff;
    const auto hi = std::max(cfg_.max_backoff, cfg_.min_backoff);
    const double jitter = std::uniform_real_distribution<double>(1.0, 1.25)(rng_);
    const auto d = std::clamp(core::from_seconds(core::to_seconds(backoff_) * jitter), lo, hi);
    backoff_ = std::min(backoff_ * 2, hi);
    return d;
}

asio::awaitable<void> input_reader::deliver(input_event ev) {
    switch (ev.kind) {
    case input_event_kind::data: stats_.bytes += ev.bytes.size(); break;
    case input_event_kind::reconnected: ++stats_.reconnects; break;
    case input_event_kind::disconnected:
    case input_event_kind::failed: ++stats_.failures; break;
    case input_event_kind::ended: break;
    }
    if (plain_sink_) {
        plain_sink_(std::move(ev));
    } else if (awaitable_sink_) {
        co_await awaitable_sink_(std::move(ev));
    }
}

asio::awaitable<bool> input_reader::wait_for(core::duration d) {
    if (stopping_) co_return false;
    if (d <= core::duration::zero()) co_return true;
    timer_.expires_after(d);
    co_await timer_.async_wait(use_tuple);  // cancelled by stop(): no error to look at
    co_return !stopping_;
}

asio::awaitable<void> input_reader::run() {
    if (stopping_) co_return;
    backoff_ = cfg_.min_backoff;
    if (cfg_.kind == input_kind::file || cfg_.kind == input_kind::stdin_) {
        co_await run_descriptor();
    } else if (cfg_.kind == input_kind::listen || cfg_.kind == input_kind::icecast) {
        co_await run_listen();
    } else if (cfg_.kind == input_kind::udp) {
        co_await run_udp();
    } else {
        co_await run_network();
    }
    stats_.connected = false;
}

asio::awaitable<void> input_reader::run_descriptor() {
    const bool is_file = cfg_.kind == input_kind::file;
    const std::string name = is_file ? fmt::format("input file '{}'", cfg_.location) : std::string("standard input");
    std::string error;
    int fd = -1;
    if (is_file) {
        fd = open_input_file(cfg_.location, error);
    } else {
        fd = ::fcntl(cfg_.fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) error = fmt::format("cannot read standard input (descriptor {}): {}", cfg_.fd, errno_message(errno));
    }
    boost::system::error_code aec;
    if (fd >= 0) {
        const int flags = is_file ? -1 : ::fcntl(fd, F_GETFL);
        descriptor_.assign(fd, aec);
        if (aec) {
            ::close(fd);
            error = fmt::format("cannot read {}: {}", name, aec.message());
        } else if (flags >= 0) {
            saved_flags_ = flags;
        }
    }
    if (!error.empty()) {
        stats_.last_error = error;
        spdlog::error("source input: {}", error);
        co_await deliver(make_event(input_event_kind::failed, error));
        if (!stopping_) co_await deliver(make_event(input_event_kind::ended, error));
        co_return;
    }
    struct stat st {};
    const bool seekable = ::fstat(descriptor_.native_handle(), &st) == 0 && S_ISREG(st.st_mode);
    stats_.connected = true;

    // Pacing: data is delivered no earlier than the token bucket allows, in pieces of ~100 ms at the rate,
    // so the total time for N bytes is at least (N - burst) / rate.
    const bool paced = cfg_.rate_bytes_per_s > 0;
    std::size_t piece = std::max<std::size_t>(cfg_.read_size, 1);
    if (paced) piece = std::min(piece, std::max<std::size_t>(512, static_cast<std::size_t>(cfg_.rate_bytes_per_s / 10)));
    core::token_bucket bucket(cfg_.rate_bytes_per_s, static_cast<double>(piece), core::clock::now());

    std::uint64_t pass_bytes = 0;
    while (!stopping_) {
        std::vector<std::byte> buf(piece);
        auto [ec, n] = co_await descriptor_.async_read_some(asio::buffer(buf), use_tuple);
        if (stopping_) break;
        if (n > 0) {
            if (paced) {
                const auto delay = bucket.reserve(static_cast<double>(n), core::clock::now());
                const bool go_on = co_await wait_for(delay);
                if (!go_on) break;
            }
            pass_bytes += n;
            co_await deliver(data_event(buf, n));
            if (stopping_) break;
        }
        if (!ec) continue;
        if (ec == asio::error::eof && is_file && cfg_.loop) {
            std::string why;
            if (!seekable) why = fmt::format("cannot loop {}: it is not a regular file", name);
            else if (pass_bytes == 0) why = fmt::format("cannot loop {}: it is empty", name);
            else if (::lseek(descriptor_.native_handle(), 0, SEEK_SET) != 0)
                why = fmt::format("cannot loop {}: {}", name, errno_message(errno));
            if (why.empty()) {
                pass_bytes = 0;
                spdlog::debug("source input: end of {}, starting again", name);
                co_await deliver(make_event(input_event_kind::reconnected,
                                            fmt::format("end of {}: starting again from the beginning", name)));
                continue;
            }
            stats_.last_error = why;
            spdlog::error("source input: {}", why);
            co_await deliver(make_event(input_event_kind::failed, why));
            if (!stopping_) co_await deliver(make_event(input_event_kind::ended, why));
            break;
        }
        if (ec == asio::error::eof) {
            spdlog::info("source input: end of {}", name);
            co_await deliver(make_event(input_event_kind::ended, fmt::format("end of {}", name)));
            break;
        }
        const auto why = fmt::format("reading {} failed: {}", name, ec.message());
        stats_.last_error = why;
        spdlog::error("source input: {}", why);
        co_await deliver(make_event(input_event_kind::failed, why));
        if (!stopping_) co_await deliver(make_event(input_event_kind::ended, why));
        break;
    }
    close_descriptor();
}

asio::awaitable<void> input_reader::run_network() {
    const bool is_http = cfg_.kind == input_kind::http;
    std::string error;
    auto address = is_http ? parse_http_url(cfg_.location, error) : parse_tcp_address(cfg_.location, error);
    if (!address) {
        stats_.last_error = error;
        spdlog::error("source input: {}", error);
        co_await deliver(make_event(input_event_kind::failed, error));
        if (!stopping_) co_await deliver(make_event(input_event_kind::ended, error));
        co_return;
    }
    host_ = std::move(address->host);
    port_ = std::move(address->port);
    target_ = std::move(address->target);
    authority_ = std::move(address->authority);

    int retries = 0;  // since the last connection that delivered data
    while (!stopping_) {
        attempt_result r;
        if (is_http) {
            r = co_await attempt_http();
        } else {
            r = co_await attempt_tcp();
        }
        stream_.close();
        stats_.connected = false;
        had_attempt_ = true;
        if (stopping_) break;
        if (r.got_data) {
            retries = 0;
            backoff_ = cfg_.min_backoff;
        }
        const bool retry = cfg_.max_reconnects < 0 || retries < cfg_.max_reconnects;
        const auto delay = retry ? next_backoff() : core::duration::zero();
        stats_.last_error = r.reason;
        std::string message = r.reason;
        if (retry)
            message += fmt::format(" ({} in {} s)", r.connected ? "reconnecting" : "retrying", seconds_text(delay));
        spdlog::warn("source input: {}", message);
        co_await deliver(make_event(r.connected ? input_event_kind::disconnected : input_event_kind::failed, message));
        if (stopping_) break;
        if (!retry) {
            const auto why = fmt::format("giving up on {} after {} {}", cfg_.location, retries,
                                         retries == 1 ? "retry" : "retries");
            spdlog::error("source input: {}", why);
            co_await deliver(make_event(input_event_kind::ended, why));
            break;
        }
        ++retries;
        const bool go_on = co_await wait_for(delay);
        if (!go_on) break;
    }
}

asio::awaitable<std::string> input_reader::connect() {
    auto [rec, endpoints] = co_await resolver_.async_resolve(host_, port_, use_tuple);
    if (stopping_) co_return "stopped";
    if (rec) co_return fmt::format("cannot resolve {}: {}", host_, rec.message());
    stream_.expires_after(cfg_.connect_timeout);
    auto [cec, ep] = co_await stream_.async_connect(endpoints, use_tuple);
    if (stopping_) co_return "stopped";
    if (!cec) co_return std::string();
    const auto why = cec == beast::error::timeout ? fmt::format("no answer within {} s", seconds_text(cfg_.connect_timeout))
                                                  : cec.message();
    co_return fmt::format("cannot connect to {}: {}", cfg_.location, why);
}

asio::awaitable<void> input_reader::on_connected() {
    stats_.connected = true;
    if (!had_attempt_) {
        spdlog::info("source input: connected to {}", cfg_.location);
        co_return;
    }
    spdlog::info("source input: reconnected to {}", cfg_.location);
    co_await deliver(make_event(input_event_kind::reconnected, fmt::format("reconnected to {}", cfg_.location)));
}

namespace {

std::string read_failure(const std::string& where, const beast::error_code& ec, core::duration stall) {
    if (ec == asio::error::eof) return fmt::format("{} closed the connection", where);
    if (ec == beast::error::timeout) return fmt::format("no data from {} for {} s", where, seconds_text(stall));
    if (ec == http::error::partial_message) return fmt::format("{} closed the connection in the middle of the stream", where);
    return fmt::format("reading from {} failed: {}", where, ec.message());
}

}  // namespace

template <bool IsRequest>
asio::awaitable<std::string> input_reader::read_body(http::parser<IsRequest, http::buffer_body>& parser,
                                                     beast::flat_buffer& buffer, std::string where, bool& got_data) {
    while (!stopping_ && !parser.is_done()) {
        std::vector<std::byte> buf(std::max<std::size_t>(cfg_.read_size, 1));
        parser.get().body().data = buf.data();
        parser.get().body().size = buf.size();
        stream_.expires_after(cfg_.stall_timeout);
        auto [ec, n] = co_await http::async_read_some(stream_, buffer, parser, use_tuple);
        if (stopping_) break;
        if (ec == http::error::need_buffer) ec = {};
        const std::size_t got = buf.size() - parser.get().body().size;
        parser.get().body().data = nullptr;
        if (got > 0) {
            got_data = true;
            co_await deliver(data_event(buf, got));
            if (stopping_) break;
        }
        if (ec) co_return read_failure(where, ec, cfg_.stall_timeout);
    }
    co_return std::string();
}

asio::awaitable<std::string> input_reader::read_raw(std::string where, bool& got_data) {
    while (!stopping_) {
        std::vector<std::byte> buf(std::max<std::size_t>(cfg_.read_size, 1));
        stream_.expires_after(cfg_.stall_timeout);
        auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf), use_tuple);
        if (stopping_) break;
        if (n > 0) {
            got_data = true;
            co_await deliver(data_event(buf, n));
            if (stopping_) break;
        }
        if (ec) co_return read_failure(where, ec, cfg_.stall_timeout);
    }
    co_return std::string();
}

asio::awaitable<input_reader::attempt_result> input_reader::attempt_tcp() {
    attempt_result r;
    r.reason = co_await connect();
    if (!r.reason.empty()) co_return r;
    r.connected = true;
    co_await on_connected();
    r.reason = co_await read_raw(cfg_.location, r.got_data);
    co_return r;
}

asio::awaitable<input_reader::attempt_result> input_reader::attempt_http() {
    attempt_result r;
    r.reason = co_await connect();
    if (!r.reason.empty()) co_return r;

    http::request<http::empty_body> req{http::verb::get, target_, 11};
    req.set(http::field::host, authority_);
    req.set(http::field::user_agent, "pixtream-source");
    req.set(http::field::accept, "*/*");
    stream_.expires_after(cfg_.connect_timeout);
    auto [wec, written] = co_await http::async_write(stream_, req, use_tuple);
    if (stopping_) co_return r;
    if (wec) {
        r.reason = fmt::format("cannot send the request to {}: {}", cfg_.location, wec.message());
        co_return r;
    }

    beast::flat_buffer buffer;
    // The body is an endless stream: no limit, and read piece by piece into our own buffers.
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    stream_.expires_after(cfg_.stall_timeout);
    auto [hec, header_bytes] = co_await http::async_read_header(stream_, buffer, parser, use_tuple);
    if (stopping_) co_return r;
    if (hec) {
        if (hec == beast::error::timeout)
            r.reason = fmt::format("no reply from {} within {} s", cfg_.location, seconds_text(cfg_.stall_timeout));
        else if (hec == http::error::end_of_stream || hec == asio::error::eof)
            r.reason = fmt::format("{} closed the connection without replying", cfg_.location);
        else
            r.reason = fmt::format("bad reply from {}: {}", cfg_.location, hec.message());
        co_return r;
    }
    const auto& res = parser.get();
    if (res.result_int() / 100 != 2) {
        const std::string_view phrase = res.reason().empty() ? http::obsolete_reason(res.result()) : res.reason();
        r.reason = fmt::format("{} answered {} {}", cfg_.location, res.result_int(), phrase);
        co_return r;
    }
    r.connected = true;
    co_await on_connected();

    r.reason = co_await read_body(parser, buffer, cfg_.location, r.got_data);
    if (r.reason.empty() && !stopping_) r.reason = fmt::format("{}: the stream ended", cfg_.location);
    co_return r;
}

}  // namespace pixtream::source

// ---------------------------------------------------------------------------------------------
// Pushed inputs: a TCP listener and UDP (unicast or multicast).

namespace pixtream::source {

asio::awaitable<void> input_reader::give_up(std::string why) {
    stats_.last_error = why;
    spdlog::error("source input: {}", why);
    co_await deliver(make_event(input_event_kind::failed, why));
    if (!stopping_) co_await deliver(make_event(input_event_kind::ended, why));
}

std::string input_reader::bind() {
    if (bound_ || (cfg_.kind != input_kind::listen && cfg_.kind != input_kind::udp && cfg_.kind != input_kind::icecast))
        return {};
    std::string error;
    const auto at = parse_bind_address(cfg_.location, cfg_.kind == input_kind::udp, error);
    if (!at) return error;
    boost::system::error_code ec;
    if (cfg_.kind != input_kind::udp) {
        acceptor_.open(at->protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(*at, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) return fmt::format("cannot listen for the broadcaster on {}: {}", cfg_.location, ec.message());
    } else {
        const auto address = at->address();
        const asio::ip::udp::endpoint local(address, at->port());
        udp_.open(local.protocol(), ec);
        // Several receivers may share a multicast group's port; a unicast port in use is an error.
        if (!ec && address.is_multicast()) udp_.set_option(asio::socket_base::reuse_address(true), ec);
        // Room for bursts while the source is busy: a few seconds of a typical stream.
        if (!ec) udp_.set_option(asio::socket_base::receive_buffer_size(4 * 1024 * 1024), ec);
        if (!ec) udp_.bind(local, ec);
        if (!ec && address.is_multicast()) udp_.set_option(asio::ip::multicast::join_group(address), ec);
        if (ec) return fmt::format("cannot receive UDP on {}: {}", cfg_.location, ec.message());
    }
    bound_ = true;
    return {};
}

asio::awaitable<void> input_reader::run_listen() {
    if (const auto error = bind(); !error.empty()) co_return co_await give_up(error);
    spdlog::info("source input: waiting for the broadcaster on {}", cfg_.location);
    bool had_one = false;
    while (!stopping_) {
        auto [aec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (stopping_) break;
        if (aec) {
            // Out of descriptors, say: not fatal, but do not spin.
            spdlog::warn("source input: accepting the broadcaster on {} failed: {}", cfg_.location, aec.message());
            if (!co_await wait_for(next_backoff())) break;
            continue;
        }
        boost::system::error_code ignored;
        const auto peer = socket.remote_endpoint(ignored);
        const auto who = fmt::format("broadcaster {}:{}", peer.address().to_string(), peer.port());
        stream_.socket() = std::move(socket);
        stats_.connected = true;
        backoff_ = cfg_.min_backoff;
        if (had_one) {
            spdlog::info("source input: {} connected on {}: the stream continues", who, cfg_.location);
            co_await deliver(make_event(input_event_kind::reconnected, fmt::format("{} connected", who)));
        } else {
            spdlog::info("source input: {} connected on {}", who, cfg_.location);
        }
        had_one = true;
        // One broadcaster at a time; the next one waits in the backlog until this one is gone.
        std::string reason;
        if (cfg_.kind == input_kind::icecast) reason = co_await read_icecast(who);
        if (reason.empty() && !stopping_) {
            bool got_data = false;
            reason = co_await read_raw(who, got_data);
        }
        stream_.close();
        stats_.connected = false;
        if (stopping_) break;
        stats_.last_error = reason;
        spdlog::warn("source input: {}; waiting for the broadcaster on {}", reason, cfg_.location);
        co_await deliver(make_event(input_event_kind::disconnected, reason + "; waiting for the broadcaster"));
    }
}

// An Icecast source client (ffmpeg icecast://, curl -T, butt, liquidsoap): `PUT /MOUNT` (or the old
// `SOURCE /MOUNT`) and the stream as its body: raw until the connection closes, or chunked. Answers
// 100 Continue when asked to, else 200 OK, and delivers the body. "" when the body ended (or was
// never chunked: then run_listen reads on), else why it stopped.
asio::awaitable<std::string> input_reader::read_icecast(std::string who) {
    beast::flat_buffer buffer;
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    stream_.expires_after(cfg_.connect_timeout);
    auto [hec, header_bytes] = co_await http::async_read_header(stream_, buffer, parser, use_tuple);
    if (stopping_) co_return "stopped";
    if (hec) co_return fmt::format("{} sent no request header: {}", who, hec.message());
    const auto& req = parser.get();
    const bool source_method = req.method() == http::verb::unknown && req.method_string() == "SOURCE";
    if (req.method() != http::verb::put && !source_method) {
        const std::string refusal = "HTTP/1.1 405 Method Not Allowed\r\nAllow: PUT, SOURCE\r\nContent-Length: 0\r\n\r\n";
        stream_.expires_after(cfg_.connect_timeout);
        co_await asio::async_write(stream_, asio::buffer(refusal), use_tuple);
        co_return fmt::format("{} sent {} {}, not a source (PUT or SOURCE)", who, std::string(req.method_string()),
                              std::string(req.target()));
    }
    const bool expect_100 = beast::iequals(req[http::field::expect], "100-continue");
    const std::string answer = expect_100 ? "HTTP/1.1 100 Continue\r\n\r\n"
                               : source_method ? "HTTP/1.0 200 OK\r\n\r\n"
                                               : "HTTP/1.1 200 OK\r\n\r\n";
    stream_.expires_after(cfg_.connect_timeout);
    auto [wec, written] = co_await asio::async_write(stream_, asio::buffer(answer), use_tuple);
    if (stopping_) co_return "stopped";
    if (wec) co_return fmt::format("cannot answer {}: {}", who, wec.message());
    spdlog::info("source input: {} streams to {}{}", who, std::string(req.target()),
                 parser.chunked() ? " (chunked)" : "");
    if (!parser.chunked()) {
        // No length, no chunks: the body is the rest of the connection. What came with the header first.
        if (buffer.size() > 0) {
            input_event ev;
            const auto* p = static_cast<const std::byte*>(buffer.data().data());
            ev.bytes.assign(p, p + buffer.size());
            co_await deliver(std::move(ev));
        }
        co_return std::string();
    }
    bool got_data = false;
    if (auto why = co_await read_body(parser, buffer, who, got_data); !why.empty()) co_return why;
    if (expect_100 && !stopping_) {  // the final answer to a request that is complete
        const std::string done = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        stream_.expires_after(cfg_.connect_timeout);
        co_await asio::async_write(stream_, asio::buffer(done), use_tuple);
    }
    co_return fmt::format("{} ended its stream", who);
}

asio::awaitable<void> input_reader::run_udp() {
    using namespace asio::experimental::awaitable_operators;
    if (const auto error = bind(); !error.empty()) co_return co_await give_up(error);
    spdlog::info("source input: receiving UDP on {}", cfg_.location);
    bool flowing = false;  // datagrams came within the stall timeout
    bool had_some = false;
    while (!stopping_) {
        std::vector<std::byte> buf(65536);
        asio::ip::udp::endpoint from;
        timer_.expires_after(cfg_.stall_timeout);
        auto got = co_await (udp_.async_receive_from(asio::buffer(buf), from, use_tuple) || timer_.async_wait(use_tuple));
        if (stopping_) break;
        if (got.index() == 1) {
            if (flowing) {
                flowing = false;
                stats_.connected = false;
                const auto why = fmt::format("no datagrams on {} for {} s", cfg_.location, seconds_text(cfg_.stall_timeout));
                stats_.last_error = why;
                spdlog::warn("source input: {}; waiting for them", why);
                co_await deliver(make_event(input_event_kind::disconnected, why + "; waiting for them"));
            }
            continue;
        }
        const auto [ec, n] = std::get<0>(got);
        if (ec) {
            if (!co_await wait_for(next_backoff())) break;
            continue;
        }
        if (!flowing) {
            flowing = true;
            stats_.connected = true;
            const auto who = fmt::format("datagrams from {}:{}", from.address().to_string(), from.port());
            spdlog::info("source input: {} on {}", who, cfg_.location);
            if (had_some) co_await deliver(make_event(input_event_kind::reconnected, who + ": the stream continues"));
            had_some = true;
        }
        if (n > 0) co_await deliver(data_event(buf, n));
    }
}

}  // namespace pixtream::source
