// The codec over a real TCP connection on 127.0.0.1: a writer thread sends frames in random pieces
// (chunks as gathered [prefix, payload, signature] writes, as the peer will), the reader decodes
// whatever read_some returns.
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "sample_messages.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <random>
#include <thread>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace pixtream;
using namespace pixtream::wire;

namespace {

struct loopback {
    asio::io_context io;
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }
};

asio::mutable_buffer as_buffer(std::span<std::byte> s) { return {s.data(), s.size()}; }

void send_messages(tcp::endpoint to, std::vector<message> msgs, unsigned seed) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(to);
    s.set_option(tcp::no_delay(true));
    std::mt19937 gen(seed);
    for (const auto& m : msgs) {
        if (const auto* c = std::get_if<chunk>(&m)) {
            const auto prefix = encode_chunk_prefix(*c);
            const std::array<asio::const_buffer, 3> parts{asio::buffer(prefix), asio::buffer(c->payload),
                                                          asio::buffer(c->sig)};
            asio::write(s, parts);
            continue;
        }
        std::vector<std::byte> frame;
        encode(m, frame);
        for (std::size_t at = 0; at < frame.size();) {
            const auto n = std::min<std::size_t>(1 + gen() % 16, frame.size() - at);
            asio::write(s, asio::buffer(frame.data() + at, n));
            at += n;
        }
    }
    s.shutdown(tcp::socket::shutdown_send);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(loopback_suite)

BOOST_AUTO_TEST_CASE(messages_cross_a_real_socket_intact) {
    loopback lb;
    std::vector<message> sent;
    std::mt19937 gen(17);
    const auto samples = test::sample_messages();
    for (int i = 0; i < 3000; ++i) {
        auto m = samples[gen() % samples.size()];
        if (auto* c = std::get_if<chunk>(&m)) c->payload.resize(gen() % 70000, std::byte{0x33});
        sent.push_back(std::move(m));
    }
    std::thread writer(send_messages, lb.endpoint(), sent, 3U);
    tcp::socket s = lb.acceptor.accept();

    frame_decoder dec;
    std::vector<message> got;
    std::error_code ec;
    for (;;) {
        boost::system::error_code read_ec;
        const auto n = s.read_some(as_buffer(dec.prepare(16384)), read_ec);
        dec.commit(n);
        while (auto m = dec.next(ec)) got.push_back(std::move(*m));
        BOOST_TEST_REQUIRE(!ec, ec.message());
        if (read_ec == asio::error::eof) break;
        BOOST_TEST_REQUIRE(!read_ec, read_ec.message());
    }
    writer.join();
    BOOST_TEST(dec.buffered() == 0U);
    BOOST_TEST_REQUIRE(got.size() == sent.size());
    BOOST_TEST((got == sent));
}

// A hostile length is refused from its four bytes: the reader does not wait for a 4 GiB body.
BOOST_AUTO_TEST_CASE(oversized_length_is_refused_without_the_body) {
    loopback lb;
    tcp::socket client(lb.io);
    client.connect(lb.endpoint());
    tcp::socket server = lb.acceptor.accept();
    asio::write(client, asio::buffer(test::bytes({0x7F, 0xFF, 0xFF, 0xFF})));

    frame_decoder dec;
    std::error_code ec;
    std::optional<message> m;
    while (!ec) {
        const auto n = server.read_some(as_buffer(dec.prepare(4096)));
        dec.commit(n);
        m = dec.next(ec);
        BOOST_TEST_REQUIRE(!m.has_value());
    }
    BOOST_TEST((ec == errc::frame_too_large));
    BOOST_TEST(dec.buffered() == 4U);
}

BOOST_AUTO_TEST_SUITE_END()
