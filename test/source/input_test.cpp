// The source's input readers against real files, pipes, processes and sockets on 127.0.0.1.
// Test servers are coroutines on the reader's own io_context; every run is bounded by run_for.
#include "pixtream/source/input.hpp"
#include "input_test_helpers.hpp"
#include "subprocess.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace pixtream;
using namespace pixtream::source;
using namespace pixtream::source::test;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------------------------
// Test servers: free coroutines taking everything by value.

asio::awaitable<void> write_and_close(tcp::socket s, std::string data) {
    co_await asio::async_write(s, asio::buffer(data), use_tuple);
    boost::system::error_code ignored;
    s.shutdown(tcp::socket::shutdown_both, ignored);
}

// Accepts one connection per element of `parts`, sends it and closes.
asio::awaitable<void> serve_parts(tcp::acceptor acceptor, std::vector<std::string> parts) {
    for (auto& part : parts) {
        auto [ec, s] = co_await acceptor.async_accept(use_tuple);
        if (ec) co_return;
        co_await write_and_close(std::move(s), std::move(part));
    }
}

// Sends `data`, then keeps the connection open without sending anything until the peer closes it.
asio::awaitable<void> serve_then_stall(tcp::acceptor acceptor, std::string data) {
    auto [ec, s] = co_await acceptor.async_accept(use_tuple);
    if (ec) co_return;
    co_await asio::async_write(s, asio::buffer(data), use_tuple);
    char byte = 0;
    co_await asio::async_read(s, asio::buffer(&byte, 1), use_tuple);
}

// Reads one request header; its text (without the blank line) goes to *seen.
asio::awaitable<bool> read_request(tcp::socket& s, std::shared_ptr<std::vector<std::string>> seen) {
    std::string req;
    auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(req), "\r\n\r\n", use_tuple);
    if (ec) co_return false;
    seen->push_back(req.substr(0, n - 4));
    co_return true;
}

// One HTTP response per element of `replies`, each a complete raw response (headers and body) that is
// written in the given pieces, then the connection is closed.
asio::awaitable<void> serve_http(tcp::acceptor acceptor, std::vector<std::vector<std::string>> replies,
                                 std::shared_ptr<std::vector<std::string>> seen) {
    for (auto& pieces : replies) {
        auto [ec, s] = co_await acceptor.async_accept(use_tuple);
        if (ec) co_return;
        const bool ok = co_await read_request(s, seen);
        if (!ok) co_return;
        for (const auto& piece : pieces) {
            auto [wec, n] = co_await asio::async_write(s, asio::buffer(piece), use_tuple);
            if (wec) break;
        }
        boost::system::error_code ignored;
        s.shutdown(tcp::socket::shutdown_both, ignored);
    }
}

// `body` in chunked transfer encoding, cut into chunks of awkward sizes and written in pieces that
// split chunk headers, with a chunk extension thrown in.
std::vector<std::string> chunked_reply(const std::string& body) {
    std::vector<std::string> out{"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nTransfer-Encoding: chunked\r\n\r\n"};
    const std::size_t sizes[] = {1, 100, 4096, 70000, 3, 65536};
    std::size_t at = 0;
    for (std::size_t i = 0; at < body.size(); ++i) {
        const std::size_t n = std::min(sizes[i % std::size(sizes)], body.size() - at);
        const std::string head = fmt::format("{:x}{}\r\n", n, i == 2 ? ";name=value" : "");
        out.push_back(head.substr(0, 1));
        out.push_back(head.substr(1) + body.substr(at, n / 2));
        out.push_back(body.substr(at + n / 2, n - n / 2) + "\r\n");
        at += n;
    }
    out.emplace_back("0\r\n\r\n");
    return out;
}

// An awaitable sink that takes its time over every event, and checks it is never entered twice.
asio::awaitable<void> slow_consume(recorder* rec, int* inside, int* max_inside, input_event ev) {
    ++*inside;
    *max_inside = std::max(*max_inside, *inside);
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(1ms);
    co_await t.async_wait(use_tuple);
    --*inside;
    rec->on(std::move(ev));
}

input_config config_for(input_kind kind, std::string location) {
    input_config cfg;
    cfg.kind = kind;
    cfg.location = std::move(location);
    cfg.min_backoff = 20ms;
    cfg.max_backoff = 100ms;
    cfg.connect_timeout = 2s;
    cfg.stall_timeout = 5s;
    cfg.seed = 7;
    return cfg;
}

struct quiet_logs {
    quiet_logs() { spdlog::set_level(spdlog::level::err); }
    ~quiet_logs() { spdlog::set_level(spdlog::level::info); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(source_input)

BOOST_AUTO_TEST_CASE(parse_input_validates) {
    temp_dir dir;
    const auto file = dir.write("in.ts", "x");
    std::string err;
    struct good_case {
        const char* kind;
        std::string location;
        input_kind expected;
    };
    const good_case good[] = {{"http", "http://127.0.0.1:8000/live.ts", input_kind::http},
                              {"http", "http://example.com", input_kind::http},
                              {"http", "http://[::1]:9000/x?y=1", input_kind::http},
                              {"tcp", "127.0.0.1:9000", input_kind::tcp},
                              {"tcp", "localhost:65535", input_kind::tcp},
                              {"tcp", "[::1]:1", input_kind::tcp},
                              {"tcp", "tcp://encoder.local:1234", input_kind::tcp},
                              {"file", file, input_kind::file},
                              {"stdin", "-", input_kind::stdin_},
                              {"stdin", "", input_kind::stdin_},
                              {"listen", "9000", input_kind::listen},
                              {"listen", "127.0.0.1:9000", input_kind::listen},
                              {"listen", "tcp://:9000", input_kind::listen},
                              {"listen", "[::1]:9000", input_kind::listen},
                              {"udp", "udp://239.255.0.1:5000", input_kind::udp},
                              {"udp", "5000", input_kind::udp},
                              {"icecast", "0.0.0.0:8000", input_kind::icecast}};
    for (const auto& g : good) {
        BOOST_TEST_CONTEXT(g.kind << " " << g.location) {
            const auto cfg = parse_input(g.kind, g.location, err);
            BOOST_TEST_REQUIRE(cfg.has_value(), err);
            BOOST_TEST((cfg->kind == g.expected));
            BOOST_TEST(to_string(cfg->kind) == std::string_view(g.kind));
        }
    }
    BOOST_TEST(parse_input("stdin", "", err)->location == "-");

    const std::string form = "(expected http://HOST[:PORT][/PATH])";
    const std::pair<std::string, std::string> bad[][1] = {
        {{"rtmp x", "unknown input kind 'rtmp' (expected http, tcp, file, stdin, listen, udp or icecast)"}},
        {{"udp x", "invalid port 'x' in 'x' (expected 1 to 65535)"}},
        {{"listen host:9000", "'host' in 'host:9000' is not an IP address"}},
        {{"listen 239.1.1.1:9000", "cannot listen for TCP on the multicast address 239.1.1.1 (got '239.1.1.1:9000')"}},
        {{"icecast 127.0.0.1:0", "invalid port '0' in '127.0.0.1:0' (expected 1 to 65535)"}},
        {{"udp [::1", "input must be [ADDRESS:]PORT (got '[::1')"}},
        {{"http 127.0.0.1:8000", "'127.0.0.1:8000' is not a URL " + form}},
        {{"http not a url", "'not a url' is not a URL " + form}},
        {{"http https://h/x", "https is not supported (expected http://HOST[:PORT][/PATH], got 'https://h/x')"}},
        {{"http ftp://h/x", "unsupported URL scheme 'ftp' " + form}},
        {{"http http:///live", "URL 'http:///live' has no host " + form}},
        {{"http http://h:0/x", "invalid port '0' in 'http://h:0/x' (expected 1 to 65535)"}},
        {{"http http://h:70000/x", "invalid port '70000' in 'http://h:70000/x' (expected 1 to 65535)"}},
        {{"tcp localhost", "tcp input must be HOST:PORT (got 'localhost')"}},
        {{"tcp :9000", "tcp input must be HOST:PORT (got ':9000'): the host is missing"}},
        {{"tcp h:0", "invalid port '0' in 'h:0' (expected 1 to 65535)"}},
        {{"tcp h:65536", "invalid port '65536' in 'h:65536' (expected 1 to 65535)"}},
        {{"tcp h:x1", "invalid port 'x1' in 'h:x1' (expected 1 to 65535)"}},
        {{"tcp h:", "invalid port '' in 'h:' (expected 1 to 65535)"}},
        {{"tcp ::1:9000", "write an IPv6 address in brackets, [ADDRESS]:PORT (got '::1:9000')"}},
        {{"tcp [::1]9000", "tcp input must be HOST:PORT or [IPV6]:PORT (got '[::1]9000')"}},
        {{"file /nonexistent/x.ts", "cannot open input file '/nonexistent/x.ts': No such file or directory"}},
        {{"file " + dir.path(), "cannot open input file '" + dir.path() + "': Is a directory"}},
        {{"file ", "missing input file name"}},
        {{"stdin x", "stdin input takes '-' as its source (got 'x')"}},
    };
    for (const auto& [b] : bad) {
        const auto space = b.first.find(' ');
        const auto kind = b.first.substr(0, space);
        const auto location = b.first.substr(space + 1);
        BOOST_TEST_CONTEXT(b.first) {
            err.clear();
            BOOST_TEST(!parse_input(kind, location, err).has_value());
            BOOST_TEST(err == b.second);
        }
    }
    if (::geteuid() != 0) {  // root reads anything
        const auto locked = dir.write("locked.ts", "x");
        ::chmod(locked.c_str(), 0);
        BOOST_TEST(!parse_input("file", locked, err).has_value());
        BOOST_TEST(err == "cannot open input file '" + locked + "': Permission denied");
    }
}

BOOST_AUTO_TEST_CASE(file_is_read_exactly) {
    quiet_logs quiet;
    temp_dir dir;
    const auto content = random_bytes(300'000, 1);
    const auto path = dir.write("in.ts", content);
    asio::io_context io;
    recorder rec;
    input_reader reader(io.get_executor(), config_for(input_kind::file, path), rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "de");
    BOOST_TEST(rec.bytes == content);
    BOOST_TEST(rec.max_piece <= 64U * 1024U);
    BOOST_TEST(rec.messages.back() == "end of input file '" + path + "'");
    BOOST_TEST(reader.stats().bytes == 300'000U);
    BOOST_TEST(!reader.stats().connected);
}

BOOST_AUTO_TEST_CASE(file_is_paced) {
    quiet_logs quiet;
    temp_dir dir;
    const auto content = random_bytes(120'000, 2);
    const auto path = dir.write("in.ts", content);
    asio::io_context io;
    recorder rec;
    auto cfg = config_for(input_kind::file, path);
    cfg.rate_bytes_per_s = 200'000;
    cfg.read_size = 16 * 1024;
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    const double elapsed = core::to_seconds(rec.last_event_at - start);
    BOOST_TEST(rec.summary == "de");
    BOOST_TEST(rec.bytes == content);
    BOOST_TEST(rec.max_piece <= cfg.read_size);
    // A lower bound only: a loaded machine may be slower, never faster.
    const double bound = (120'000.0 - static_cast<double>(cfg.read_size)) / cfg.rate_bytes_per_s;
    BOOST_TEST(elapsed >= bound, "took " << elapsed << " s, at least " << bound << " s expected");
}

BOOST_AUTO_TEST_CASE(file_loops_with_reconnected_between_passes) {
    quiet_logs quiet;
    temp_dir dir;
    const auto content = random_bytes(10'000, 3);
    const auto path = dir.write("in.ogg", content);
    asio::io_context io;
    recorder rec;
    rec.stop_after_bytes = 25'000;
    auto cfg = config_for(input_kind::file, path);
    cfg.loop = true;
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "drdrd");
    BOOST_TEST(rec.bytes == content + content + content);
    BOOST_TEST(reader.stats().reconnects == 2U);
    BOOST_TEST(rec.messages[0] == "end of input file '" + path + "': starting again from the beginning");
}

BOOST_AUTO_TEST_CASE(file_failures_end_the_input) {
    quiet_logs quiet;
    temp_dir dir;
    {
        asio::io_context io;
        recorder rec;
        auto cfg = config_for(input_kind::file, dir.write("empty.ts", ""));
        cfg.loop = true;
        input_reader reader(io.get_executor(), cfg, rec.sink());
        BOOST_TEST_REQUIRE(run_reader(io, reader));
        BOOST_TEST(rec.summary == "fe");
        BOOST_TEST(rec.messages[0] == "cannot loop input file '" + cfg.location + "': it is empty");
    }
    {
        asio::io_context io;
        recorder rec;
        input_reader reader(io.get_executor(), config_for(input_kind::file, dir.path() + "/gone.ts"), rec.sink());
        BOOST_TEST_REQUIRE(run_reader(io, reader));
        BOOST_TEST(rec.summary == "fe");
        BOOST_TEST(rec.messages[0] == "cannot open input file '" + dir.path() + "/gone.ts': No such file or directory");
        BOOST_TEST(reader.stats().last_error == rec.messages[0]);
    }
}

BOOST_AUTO_TEST_CASE(awaitable_sink_is_awaited_one_event_at_a_time) {
    quiet_logs quiet;
    temp_dir dir;
    const auto content = random_bytes(40'000, 4);
    const auto path = dir.write("in.ts", content);
    asio::io_context io;
    recorder rec;
    int inside = 0;
    int max_inside = 0;
    auto cfg = config_for(input_kind::file, path);
    cfg.read_size = 1000;
    input_reader reader(io.get_executor(), cfg, [&](input_event ev) {
        return slow_consume(&rec, &inside, &max_inside, std::move(ev));
    });
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "de");
    BOOST_TEST(rec.bytes == content);
    BOOST_TEST(max_inside == 1);
    BOOST_TEST(rec.data_events == 40U);
}

BOOST_AUTO_TEST_CASE(stdin_reads_a_pipe_to_its_end) {
    quiet_logs quiet;
    const auto content = random_bytes(200'000, 5);
    ::signal(SIGPIPE, SIG_IGN);  // a writer outliving its reader gets EPIPE, not a signal
    int fds[2];
    BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    const int flags_before = ::fcntl(fds[0], F_GETFL);
    asio::io_context io;
    asio::co_spawn(io, write_all_and_close(asio::posix::stream_descriptor(io, fds[1]), content), rethrow);
    recorder rec;
    auto cfg = config_for(input_kind::stdin_, "-");
    cfg.fd = fds[0];
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "de");
    BOOST_TEST(rec.bytes == content);
    BOOST_TEST(rec.messages.back() == "end of standard input");
    // The caller's descriptor stays open and keeps its flags (no O_NONBLOCK left behind).
    BOOST_TEST(::fcntl(fds[0], F_GETFL) == flags_before);
    ::close(fds[0]);
}

BOOST_AUTO_TEST_CASE(stdin_reads_a_process_and_a_redirected_file) {
    quiet_logs quiet;
    temp_dir dir;
    const auto content = random_bytes(150'000, 6);
    const auto path = dir.write("in.ts", content);
    {
        // `cat FILE |` as the source's standard input.
        auto child = spawn_to_pipe({"/bin/cat", path});
        asio::io_context io;
        recorder rec;
        auto cfg = config_for(input_kind::stdin_, "-");
        cfg.fd = child->read_fd;
        input_reader reader(io.get_executor(), cfg, rec.sink());
        rec.reader = &reader;
        BOOST_TEST_REQUIRE(run_reader(io, reader));
        BOOST_TEST(rec.summary == "de");
        BOOST_TEST(rec.bytes == content);
        BOOST_TEST((child->wait(5s) == std::optional<int>(0)));
    }
    {
        // `< FILE`: a regular file as standard input (epoll refuses it; reads must still work).
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        BOOST_TEST_REQUIRE(fd >= 0);
        asio::io_context io;
        recorder rec;
        auto cfg = config_for(input_kind::stdin_, "-");
        cfg.fd = fd;
        input_reader reader(io.get_executor(), cfg, rec.sink());
        BOOST_TEST_REQUIRE(run_reader(io, reader));
        BOOST_TEST(rec.summary == "de");
        BOOST_TEST(rec.bytes == content);
        ::close(fd);
    }
}

BOOST_AUTO_TEST_CASE(tcp_reconnects_after_the_server_closes) {
    quiet_logs quiet;
    const auto first = random_bytes(200'000, 7);
    const auto second = random_bytes(100'000, 8);
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    asio::co_spawn(io, serve_parts(std::move(acceptor), {first, second}), rethrow);
    recorder rec;
    rec.stop_after_bytes = first.size() + second.size();
    const auto location = fmt::format("127.0.0.1:{}", port);
    input_reader reader(io.get_executor(), config_for(input_kind::tcp, location), rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "dxrd");
    BOOST_TEST(rec.bytes == first + second);
    BOOST_TEST_REQUIRE(rec.messages.size() == 2U);
    BOOST_TEST(rec.messages[0].starts_with(location + " closed the connection (reconnecting in 0.0"), rec.messages[0]);
    BOOST_TEST(rec.messages[1] == "reconnected to " + location);
    BOOST_TEST(reader.stats().bytes == first.size() + second.size());
    BOOST_TEST(reader.stats().reconnects == 1U);
    BOOST_TEST(reader.stats().failures == 1U);
}

BOOST_AUTO_TEST_CASE(tcp_stall_means_reconnect) {
    quiet_logs quiet;
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    asio::co_spawn(io, serve_then_stall(std::move(acceptor), "abc"), rethrow);
    recorder rec;
    rec.stop_on = 'x';
    auto cfg = config_for(input_kind::tcp, fmt::format("127.0.0.1:{}", port));
    cfg.stall_timeout = 150ms;
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "dx");
    BOOST_TEST(rec.bytes == "abc");
    BOOST_TEST(rec.messages[0].starts_with("no data from " + cfg.location + " for 0.15 s (reconnecting in"),
               rec.messages[0]);
}

BOOST_AUTO_TEST_CASE(tcp_gives_up_after_max_reconnects_with_growing_backoff) {
    quiet_logs quiet;
    asio::io_context io;
    const auto port = dead_port();
    recorder rec;
    auto cfg = config_for(input_kind::tcp, fmt::format("127.0.0.1:{}", port));
    cfg.max_reconnects = 2;
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "fffe");
    const auto refused = "cannot connect to " + cfg.location + ": Connection refused";
    BOOST_TEST(rec.messages[0].starts_with(refused + " (retrying in "), rec.messages[0]);
    BOOST_TEST(rec.messages[1].starts_with(refused + " (retrying in "), rec.messages[1]);
    BOOST_TEST(rec.messages[2] == refused);
    BOOST_TEST(rec.messages[3] == "giving up on " + cfg.location + " after 2 retries");
    BOOST_TEST(reader.stats().last_error == refused);
    // Waits of at least 20 ms, then 40 ms.
    BOOST_TEST(core::to_seconds(rec.last_event_at - start) >= 0.060);
}

BOOST_AUTO_TEST_CASE(http_chunked_body_is_read_exactly) {
    quiet_logs quiet;
    const auto body = random_bytes(300'000, 9);
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    auto seen = std::make_shared<std::vector<std::string>>();
    asio::co_spawn(io, serve_http(std::move(acceptor), {chunked_reply(body)}, seen), rethrow);
    recorder rec;
    rec.stop_on = 'x';
    const auto url = fmt::format("http://127.0.0.1:{}/live.ts?x=1", port);
    input_reader reader(io.get_executor(), config_for(input_kind::http, url), rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "dx");
    BOOST_TEST(rec.bytes == body);
    BOOST_TEST(rec.messages[0].starts_with(url + ": the stream ended (reconnecting in"), rec.messages[0]);
    BOOST_TEST_REQUIRE(seen->size() == 1U);
    BOOST_TEST(seen->at(0).starts_with("GET /live.ts?x=1 HTTP/1.1\r\n"), seen->at(0));
    BOOST_TEST(seen->at(0).find(fmt::format("\r\nHost: 127.0.0.1:{}", port)) != std::string::npos, seen->at(0));
}

BOOST_AUTO_TEST_CASE(http_10_close_delimited_body_is_read_exactly) {
    quiet_logs quiet;
    const auto body = random_bytes(100'000, 10);
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    auto seen = std::make_shared<std::vector<std::string>>();
    std::vector<std::string> reply{"HTTP/1.0 200 OK\r\nContent-Type: application/ogg\r\n\r\n" + body.substr(0, 10),
                                   body.substr(10)};
    asio::co_spawn(io, serve_http(std::move(acceptor), {reply}, seen), rethrow);
    recorder rec;
    rec.stop_on = 'x';
    input_reader reader(io.get_executor(), config_for(input_kind::http, fmt::format("http://127.0.0.1:{}/", port)),
                        rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "dx");
    BOOST_TEST(rec.bytes == body);
}

BOOST_AUTO_TEST_CASE(http_error_status_is_a_failure_and_retried) {
    quiet_logs quiet;
    const auto body = random_bytes(5'000, 11);
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    auto seen = std::make_shared<std::vector<std::string>>();
    std::vector<std::vector<std::string>> replies{
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"},
        {"HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n"},
        {fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.size()), body}};
    asio::co_spawn(io, serve_http(std::move(acceptor), replies, seen), rethrow);
    recorder rec;
    rec.stop_on = 'x';
    const auto url = fmt::format("http://127.0.0.1:{}/live.ts", port);
    input_reader reader(io.get_executor(), config_for(input_kind::http, url), rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "ffrdx");
    BOOST_TEST(rec.bytes == body);
    BOOST_TEST(rec.messages[0].starts_with(url + " answered 404 Not Found (retrying in 0.0"), rec.messages[0]);
    BOOST_TEST(rec.messages[1].starts_with(url + " answered 503 Service Unavailable (retrying in 0.0"), rec.messages[1]);
    BOOST_TEST(rec.messages[2] == "reconnected to " + url);
    BOOST_TEST(seen->size() == 3U);
}

BOOST_AUTO_TEST_CASE(http_connection_refused_backs_off_until_the_server_appears) {
    quiet_logs quiet;
    asio::io_context io;
    const auto port = dead_port();
    auto seen = std::make_shared<std::vector<std::string>>();
    recorder rec;
    rec.stop_after_bytes = 5;
    // After the second refusal, the server starts listening.
    rec.on_event = [&](const input_event& ev, const recorder& r) {
        if (ev.kind == input_event_kind::failed && r.failures == 2) {
            std::vector<std::vector<std::string>> replies{{"HTTP/1.1 200 OK\r\n\r\nhello"}};
            asio::co_spawn(io, serve_http(listen_on(io, port), replies, seen), rethrow);
        }
    };
    const auto url = fmt::format("http://127.0.0.1:{}/live.ts", port);
    input_reader reader(io.get_executor(), config_for(input_kind::http, url), rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "ffrd");
    BOOST_TEST(rec.bytes == "hello");
    const auto refused = "cannot connect to " + url + ": Connection refused (retrying in ";
    BOOST_TEST(rec.messages[0].starts_with(refused), rec.messages[0]);
    BOOST_TEST(rec.messages[1].starts_with(refused), rec.messages[1]);
    BOOST_TEST(reader.stats().reconnects == 1U);
}

BOOST_AUTO_TEST_CASE(stop_ends_a_reader_waiting_for_data) {
    quiet_logs quiet;
    asio::io_context io;
    auto acceptor = listen_on(io, 0);
    const auto port = acceptor.local_endpoint().port();
    asio::co_spawn(io, serve_then_stall(std::move(acceptor), "x"), rethrow);
    recorder rec;
    auto cfg = config_for(input_kind::tcp, fmt::format("127.0.0.1:{}", port));
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    // Stop from outside the sink once the byte is in: run() must return without further events.
    rec.on_event = [&](const input_event&, const recorder&) {
        asio::post(io, [&reader] { reader.stop(); });
    };
    BOOST_TEST_REQUIRE(run_reader(io, reader));
    BOOST_TEST(rec.summary == "d");
    BOOST_TEST(!reader.stats().connected);
}

BOOST_AUTO_TEST_CASE(ffmpeg_http_server_stream_is_valid_ogg) {
    quiet_logs quiet;
    const auto ffmpeg = find_program("ffmpeg");
    if (!ffmpeg) {
        BOOST_TEST_MESSAGE("ffmpeg not found: skipped");
        return;
    }
    const auto port = dead_port();
    const auto url = fmt::format("http://127.0.0.1:{}/live.ogg", port);
    pixtream::test::subprocess ff({*ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                                   "sine=frequency=440:duration=2", "-c:a", "libvorbis", "-f", "ogg", "-listen", "1", url});
    asio::io_context io;
    recorder rec;
    rec.stop_on = 'x';
    auto cfg = config_for(input_kind::http, url);
    cfg.min_backoff = 50ms;
    cfg.max_backoff = 200ms;
    input_reader reader(io.get_executor(), cfg, rec.sink());
    rec.reader = &reader;
    BOOST_TEST_REQUIRE(run_reader(io, reader, 15s));
    // Refusals until ffmpeg listens, then the whole stream, then the end of it.
    std::string_view summary = rec.summary;
    const bool refused_first = summary.starts_with('f');
    while (summary.starts_with('f')) summary.remove_prefix(1);
    if (refused_first) {
        BOOST_TEST(summary.starts_with('r'), rec.summary);
        summary.remove_prefix(1);
    }
    BOOST_TEST(summary == "dx", rec.summary);
    BOOST_TEST(rec.bytes.substr(0, 4) == "OggS");
    const auto check = check_ogg(rec.bytes);
    BOOST_TEST(check.error == "", check.error);
    BOOST_TEST(check.pages >= 3U);
    BOOST_TEST(check.last_granule >= 80'000U);  // 2 s at 44.1 kHz
    const auto status = ff.wait(5s);
    BOOST_TEST((status == std::optional<int>(0)), ff.stderr_text());
}

BOOST_AUTO_TEST_SUITE_END()
