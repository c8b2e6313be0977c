#pragma once
// An in-process tracker on 127.0.0.1 (its own io_context and thread), and a blocking raw-HTTP client
// with a receive deadline, so a test fails instead of hanging when the server misbehaves.
#include "pixtream/tracker/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <string>
#include <thread>

namespace pixtream::tracker::test {

namespace asio = boost::asio;
using asio::ip::tcp;

struct running_tracker {
    asio::io_context io;
    std::shared_ptr<server> srv;
    std::thread thread;

    explicit running_tracker(registry_config rc = {}, server_config sc = {}) {
        srv = std::make_shared<server>(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), rc,
                                       sc);
        asio::co_spawn(io, srv->run(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        thread = std::thread([this] { io.run(); });
    }
    ~running_tracker() {
        io.stop();
        thread.join();
    }
    running_tracker(const running_tracker&) = delete;
    running_tracker& operator=(const running_tracker&) = delete;

    std::uint16_t port() const { return srv->local_endpoint().port(); }
};

// A connected blocking socket whose reads give up after `deadline_s` seconds.
inline tcp::socket connect_to(asio::io_context& io, std::uint16_t port, int deadline_s = 5) {
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{deadline_s, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

struct raw_reply {
    int status = 0;
    std::string body;
    bool closed_after = false;  // the server closed the connection after its reply
    std::string error;
    boost::json::value json() const { return boost::json::parse(body); }
};

// Reads one HTTP/1.1 response (Content-Length framed) from s.
inline raw_reply read_reply(tcp::socket& s, bool check_close = true) {
    raw_reply r;
    std::string data;
    char buf[4096];
    boost::system::error_code ec;
    std::size_t header_end = std::string::npos;
    std::size_t need = 0;
    for (;;) {
        if (header_end == std::string::npos) {
            header_end = data.find("\r\n\r\n");
            if (header_end != std::string::npos) {
                r.status = std::stoi(data.substr(9, 3));
                const auto cl = data.find("Content-Length: ");
                need = header_end + 4 + (cl < header_end ? std::stoul(data.substr(cl + 16)) : 0);
            }
        }
        if (header_end != std::string::npos && data.size() >= need) break;
        const auto n = s.read_some(asio::buffer(buf), ec);
        if (ec) {
            r.error = ec.message();
            r.closed_after = ec == asio::error::eof;
            return r;
        }
        data.append(buf, n);
    }
    r.body = data.substr(header_end + 4, need - header_end - 4);
    if (!check_close) return r;
    // Anything after the reply: a close shows as EOF straight away.
    s.read_some(asio::buffer(buf, 1), ec);
    r.closed_after = ec == asio::error::eof || ec == asio::error::connection_reset;
    return r;
}

inline raw_reply http_exchange(std::uint16_t port, const std::string& raw) {
    asio::io_context io;
    auto s = connect_to(io, port);
    asio::write(s, asio::buffer(raw));
    return read_reply(s);
}

inline raw_reply get(std::uint16_t port, const std::string& target) {
    return http_exchange(port, "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
}

}  // namespace pixtream::tracker::test
