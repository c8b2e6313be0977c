// stream::output_server over real loopback sockets: raw and HTTP players, /stats, bad requests,
// joins mid-stream (byte-exact, and decoded by ffmpeg), gaps, slow players, end of stream.
#include "output_fixture.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace pixtream::stream;
using namespace pixtream::stream::test;

namespace {

constexpr std::uint8_t ra = wire::chunk::flag_random_access;
constexpr std::uint8_t hdr = wire::chunk::flag_header;

// (No burst on connect: a new player waits for the next random-access chunk; the burst has tests of its own.)
const output_config quick{.raw_detect = 100ms, .read_timeout = 1s, .burst_seconds = 0};
const output_config bursting{.raw_detect = 100ms, .read_timeout = 1s, .burst_seconds = 1.5};

std::string concat(const std::vector<wire::chunk_ptr>& cs, std::size_t from = 0) {
    std::string out;
    for (std::size_t i = from; i < cs.size(); ++i) out += to_string(cs[i]->payload);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(output_server_suite)

BOOST_AUTO_TEST_CASE(raw_client_gets_the_exact_bytes) {
    running_output out(quick);
    player p(out.port());
    BOOST_TEST_REQUIRE(out.wait_clients(1));
    BOOST_TEST(!out.stats().first_byte.has_value());
    std::string expected;
    for (std::uint64_t i = 0; i < 20; ++i) {
        const std::string payload(1000 + i * 37, static_cast<char>('a' + i));
        out.write(make_chunk(i, ra, payload));
        expected += payload;
    }
    out.end_of_stream();
    BOOST_TEST_REQUIRE(p.wait_eof());
    BOOST_TEST(p.data() == expected);
    const auto st = out.stats();
    BOOST_TEST(st.clients_served == 1U);
    BOOST_TEST(st.bytes_sent == expected.size());
    BOOST_TEST(st.first_byte.has_value());
    BOOST_TEST(st.chunks_written == 20U);
}

BOOST_AUTO_TEST_CASE(http_get_gets_200_and_the_exact_bytes) {
    running_output out(quick);
    player p(out.port(), "GET /live.ts HTTP/1.1\r\nHost: t\r\nRange: bytes=0-\r\n\r\n");
    BOOST_TEST_REQUIRE(out.wait_clients(1));
    std::string expected;
    for (std::uint64_t i = 0; i < 10; ++i) {
        const std::string payload = "G" + std::string(188 * (i + 1) - 1, static_cast<char>('0' + i));
        out.write(make_chunk(i, ra, payload));
        expected += payload;
    }
    out.end_of_stream();
    BOOST_TEST_REQUIRE(p.wait_eof());
    const auto r = split_response(p.data());
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->status == 200);
    BOOST_TEST(r->head.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(r->head.find("Content-Type: video/mp2t\r\n") != std::string::npos, r->head);  // guessed
    BOOST_TEST(r->head.find("Connection: close\r\n") != std::string::npos);
    BOOST_TEST(r->head.find("Content-Length") == std::string::npos);
    BOOST_TEST(r->body == expected);
    BOOST_TEST(out.stats().http_requests == 1U);

    // The configured content type wins; HEAD gets the head only.
    running_output ogg({.content_type = "audio/ogg", .raw_detect = 100ms});
    player head(ogg.port(), "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST_REQUIRE(head.wait_eof());
    const auto h = split_response(head.data());
    BOOST_TEST_REQUIRE(h.has_value());
    BOOST_TEST(h->status == 200);
    BOOST_TEST(h->head.find("Content-Type: audio/ogg\r\n") != std::string::npos);
    BOOST_TEST(h->body.empty());
    BOOST_TEST(ogg.stats().clients_served == 0U);
}

BOOST_AUTO_TEST_CASE(stats_and_bad_requests) {
    running_output out({.raw_detect = 100ms, .read_timeout = 300ms}, [] { return std::string("{\"peer\": 1}"); });
    {
        player p(out.port(), "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
        BOOST_TEST_REQUIRE(p.wait_eof());
        const auto r = split_response(p.data());
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->head.find("Content-Type: application/json\r\n") != std::string::npos);
        BOOST_TEST(r->head.find("Content-Length: 11\r\n") != std::string::npos);
        BOOST_TEST(r->body == "{\"peer\": 1}");
    }
    {
        player p(out.port(), "HEAD /stats?x=1 HTTP/1.0\r\n\r\n");
        BOOST_TEST_REQUIRE(p.wait_eof());
        const auto r = split_response(p.data());
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->body.empty());
    }
    struct hostile {
        const char* what;
        std::string raw;
        int status;
        const char* needle;
    };
    const hostile cases[] = {
        {"POST", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, "Allow: GET, HEAD\r\n"},
        {"garbage", std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16), 400, "malformed HTTP request"},
        {"bad version", "GET / HTTP/9\r\n\r\n", 400, "malformed HTTP request"},
        {"header too large", "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(9000, 'p') + "\r\n\r\n", 400,
         "request header too large"},
        {"slowloris", "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ", 408, "request not received in time"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            player p(out.port(), c.raw);
            BOOST_TEST_REQUIRE(p.wait_eof());
            const auto r = split_response(p.data());
            BOOST_TEST_REQUIRE(r.has_value());
            BOOST_TEST(r->status == c.status);
            BOOST_TEST(p.data().find(c.needle) != std::string::npos, p.data());
        }
    }
    const auto st = out.stats();
    BOOST_TEST(st.bad_requests == 5U);
    BOOST_TEST(st.clients_served == 0U);

    // Without the owner's function: the server's own counters.
    running_output plain(quick);
    player p(plain.port(), "GET /stats HTTP/1.1\r\n\r\n");
    BOOST_TEST_REQUIRE(p.wait_eof());
    BOOST_TEST(p.data().find("\"clients_served\": 0") != std::string::npos, p.data());
}

BOOST_AUTO_TEST_CASE(port_in_use_is_a_clear_error) {
    running_output out(quick);
    asio::io_context io;
    try {
        output_server second(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), out.port()));
        BOOST_FAIL("bound a port in use");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == asio::error::address_in_use);
        BOOST_TEST(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(out.port())) !=
                   std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(late_players_start_at_a_random_access_chunk_after_its_header) {
    running_output out(quick);
    const std::vector<wire::chunk_ptr> c = {
        make_chunk(0, hdr, "H0|"),          make_chunk(1, ra, "C1|", 0),  make_chunk(2, 0, "C2|", 0),
        make_chunk(3, 0, "C3|", 0),         make_chunk(4, 0, "C4|", 0),   make_chunk(5, ra, "C5|", 0),
        make_chunk(6, 0, "C6|", 0),         make_chunk(7, hdr, "H7|"),    make_chunk(8, ra, "C8|", 7),
        make_chunk(9, 0, "C9|", 7),
    };
    player a(out.port());
    BOOST_TEST_REQUIRE(out.wait_clients(1));
    out.write_all(c, 0, 4);
    player b(out.port());
    BOOST_TEST_REQUIRE(out.wait_clients(2));
    out.write_all(c, 4, 8);
    player h(out.port(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST_REQUIRE(out.wait_clients(3));
    out.write_all(c, 8);
    out.end_of_stream();

    BOOST_TEST_REQUIRE(a.wait_eof());
    BOOST_TEST(a.data() == "H0|C1|C2|C3|C4|C5|C6|H7|C8|C9|");
    BOOST_TEST_REQUIRE(b.wait_eof());
    BOOST_TEST(b.data() == "H0|C5|C6|H7|C8|C9|");  // the header it got in band is not repeated
    BOOST_TEST_REQUIRE(h.wait_eof());
    const auto r = split_response(h.data());
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->body == "H7|C8|C9|");
    BOOST_TEST(r->head.find("Content-Type: application/octet-stream\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(gap_makes_players_resync_at_the_next_random_access_chunk) {
    running_output out(quick);
    player a(out.port());
    BOOST_TEST_REQUIRE(out.wait_clients(1));
    out.run_on_io([&] {
        auto& s = *out.srv;
        s.write(make_chunk(0, hdr, "H0|"));
        s.write(make_chunk(1, ra, "C1|", 0));
        s.write(make_chunk(2, 0, "C2|", 0));
        s.gap();
        s.write(make_chunk(4, 0, "C4|", 0));    // not random access: skipped
        s.write(make_chunk(5, ra, "C5|", 0));   // resync; header 0 is the one it has
        s.gap();
        s.write(make_chunk(7, hdr, "H7|"));     // a header is not a start
        s.write(make_chunk(8, ra, "C8|", 7));   // resync with the new header first
        s.gap();
        s.write(make_chunk(10, ra, "CA|", 99)); // refers to an unknown header: cannot start here
        s.write(make_chunk(11, ra, "CB|"));     // no header needed
        s.write(make_chunk(12, 0, "CC|"));
        // set_header registers a header chunk that never went through write().
        s.set_header(make_chunk(20, hdr, "HK|"));
        s.gap();
        s.write(make_chunk(21, ra, "CL|", 20));
        s.end_of_stream();
    });
    BOOST_TEST_REQUIRE(a.wait_eof());
    BOOST_TEST(a.data() == "H0|C1|C2|C5|H7|C8|CB|CC|HK|CL|");
    BOOST_TEST(out.stats().gaps == 4U);
}

BOOST_AUTO_TEST_CASE(a_slow_player_is_dropped_and_the_others_get_everything) {
    output_config cfg = quick;
    cfg.max_queue_bytes = 256 * 1024;
    running_output out(cfg);
    player fast(out.port());
    asio::io_context io;
    auto slow = connect_to(io, out.port(), 4096);  // never reads
    BOOST_TEST_REQUIRE(out.wait_clients(2));

    std::string expected;
    const std::string payload(64 * 1024, 'x');
    bool dropped = false;
    std::uint64_t id = 0;
    // Each chunk reaches the fast player before the next is written; the slow one's queue grows.
    for (; id < 1024 && !dropped; ++id) {
        out.write(make_chunk(id, ra, payload));
        expected += payload;
        BOOST_TEST_REQUIRE(fast.wait_size(expected.size()));
        dropped = out.stats().dropped_slow == 1;
    }
    BOOST_TEST_REQUIRE(dropped);
    BOOST_TEST(out.wait_clients(1));
    for (int i = 0; i < 5; ++i, ++id) {
        out.write(make_chunk(id, ra, payload));
        expected += payload;
    }
    out.end_of_stream();
    BOOST_TEST_REQUIRE(fast.wait_eof());
    BOOST_TEST(fast.data().size() == expected.size());
    BOOST_TEST((fast.data() == expected));
    BOOST_TEST(out.stats().dropped_slow == 1U);
    // The slow player sees its connection end (after what the kernel had buffered).
    boost::system::error_code ec;
    std::vector<char> sink(1 << 20);
    while (!ec) slow.read_some(asio::buffer(sink), ec);
    BOOST_TEST((ec == asio::error::eof || ec == asio::error::connection_reset), ec.message());
}

BOOST_AUTO_TEST_CASE(end_of_stream_gives_eof_now_and_later) {
    running_output out(quick);
    player a(out.port());
    player h(out.port(), "GET / HTTP/1.1\r\n\r\n");
    BOOST_TEST_REQUIRE(out.wait_clients(2));
    out.write(make_chunk(0, ra, "only|"));
    out.write(make_chunk(1, ra | wire::chunk::flag_end_of_stream, "last|"));
    BOOST_TEST_REQUIRE(a.wait_eof());
    BOOST_TEST(a.data() == "only|last|");
    BOOST_TEST_REQUIRE(h.wait_eof());
    const auto r = split_response(h.data());
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->body == "only|last|");
    out.write(make_chunk(2, ra, "ignored|"));

    player late_raw(out.port());
    BOOST_TEST_REQUIRE(late_raw.wait_eof());
    BOOST_TEST(late_raw.data().empty());
    player late_http(out.port(), "GET / HTTP/1.1\r\n\r\n");
    BOOST_TEST_REQUIRE(late_http.wait_eof());
    const auto late = split_response(late_http.data());
    BOOST_TEST_REQUIRE(late.has_value());
    BOOST_TEST(late->status == 503);

    // An HTTP player that got no chunk before the end still gets a response head.
    running_output empty(quick);
    player e(empty.port(), "GET / HTTP/1.1\r\n\r\n");
    BOOST_TEST_REQUIRE(empty.wait_clients(1));
    empty.end_of_stream();
    BOOST_TEST_REQUIRE(e.wait_eof());
    const auto head_only = split_response(e.data());
    BOOST_TEST_REQUIRE(head_only.has_value());
    BOOST_TEST(head_only->status == 200);
    BOOST_TEST(head_only->body.empty());
}

// A new player gets the chunks since a recent random-access chunk at once (the latest one at least
// burst_seconds before the newest chunk), behind its header; then the live ones. After a gap, the next
// player waits for the next random-access chunk.
BOOST_AUTO_TEST_CASE(a_new_player_gets_a_burst_from_a_recent_random_access_chunk) {
    running_output out(bursting);
    const auto at = [](std::uint64_t id, std::uint8_t flags, std::string text, std::optional<std::uint64_t> ref,
                       double seconds) {
        auto c = make_chunk(id, flags, std::move(text), ref);
        auto m = std::make_shared<wire::chunk>(*c);
        m->timestamp = static_cast<core::wall_micros>(1'000'000'000 + seconds * 1e6);
        return wire::chunk_ptr(m);
    };
    std::vector<wire::chunk_ptr> c = {
        at(0, hdr, "H0|", std::nullopt, 0), at(1, ra, "C1|", 0, 0),   at(2, 0, "C2|", 0, 0.5),
        at(3, ra, "C3|", 0, 1.0),          at(4, 0, "C4|", 0, 1.5),  at(5, ra, "C5|", 0, 2.0),
        at(6, 0, "C6|", 0, 2.5),           at(7, 0, "C7|", 0, 3.0),  at(8, ra, "C8|", 0, 3.5),
    };
    out.write_all(c, 0, 7);
    player raw(out.port());
    player http(out.port(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    BOOST_TEST_REQUIRE(out.wait_clients(2));
    out.write_all(c, 7, 8);
    out.gap();
    player after_gap(out.port());
    BOOST_TEST_REQUIRE(out.wait_clients(3));
    out.write_all(c, 8);
    out.end_of_stream();
    BOOST_TEST_REQUIRE(raw.wait_eof());
    BOOST_TEST(raw.data() == "H0|C3|C4|C5|C6|C7|C8|");  // C3: the latest random-access chunk 1.5 s before C6
    BOOST_TEST_REQUIRE(http.wait_eof());
    const auto r = split_response(http.data());
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->body == "H0|C3|C4|C5|C6|C7|C8|");
    BOOST_TEST_REQUIRE(after_gap.wait_eof());
    BOOST_TEST(after_gap.data() == "H0|C8|");
}

BOOST_AUTO_TEST_CASE(players_joining_real_streams_mid_way_decode_cleanly) {
    struct medium {
        const char* ext;
        const byte_vector* input;
        std::size_t max_bytes;
    };
    const medium cases[] = {{"ts", &test_media().ts, 8 * 1024}, {"ogg", &test_media().ogg, 8 * 1024}};
    temp_dir dir;
    for (const auto& m : cases) for (const bool burst : {false, true}) {
        BOOST_TEST_CONTEXT(m.ext << (burst ? ", burst on connect" : ", no burst")) {
            const auto chunks = chunk_media(*m.input, m.max_bytes);
            BOOST_TEST_REQUIRE(chunks.size() > 12U);
            running_output out(burst ? bursting : quick);
            player early(out.port());
            BOOST_TEST_REQUIRE(out.wait_clients(1));
            // Late players join at three points, raw and HTTP; each must start at the next
            // random-access chunk after the header chunk.
            std::vector<std::unique_ptr<player>> late;
            std::vector<std::size_t> joined_at;
            std::size_t written = 0;
            for (std::size_t j = 1; j <= 3; ++j) {
                const std::size_t at = chunks.size() * j / 4 + 1;
                out.write_all(chunks, written, at);
                written = at;
                late.push_back(std::make_unique<player>(out.port(), j == 2 ? "GET / HTTP/1.1\r\n\r\n" : ""));
                joined_at.push_back(at);
                BOOST_TEST_REQUIRE(out.wait_clients(1 + j));
            }
            out.write_all(chunks, written);
            out.end_of_stream();

            BOOST_TEST_REQUIRE(early.wait_eof());
            BOOST_TEST((early.data() == to_string(*m.input)));
            for (std::size_t j = 0; j < late.size(); ++j) {
                BOOST_TEST_CONTEXT("player joining before chunk " << joined_at[j]) {
                    BOOST_TEST_REQUIRE(late[j]->wait_eof());
                    std::string got = late[j]->data();
                    if (j == 1) {
                        const auto r = split_response(got);
                        BOOST_TEST_REQUIRE(r.has_value());
                        BOOST_TEST(r->head.find(std::string("Content-Type: ") +
                                                (m.ext == std::string("ts") ? "video/mp2t" : "audio/ogg")) !=
                                   std::string::npos);
                        got = r->body;
                    }
                    // Without a burst: from the next random-access chunk. With one: from a random-access
                    // chunk already written (these chunks carry no timestamps: the oldest one held).
                    std::size_t k = joined_at[j];
                    while (k < chunks.size() && !chunks[k]->random_access()) ++k;
                    if (burst) {
                        k = 0;
                        while (k < chunks.size() && !chunks[k]->random_access()) ++k;
                    }
                    BOOST_TEST_REQUIRE(k < chunks.size());
                    BOOST_TEST_REQUIRE(chunks[k]->has_header_ref());
                    const auto expected = to_string(chunks[chunks[k]->header_ref.value()]->payload) + concat(chunks, k);
                    BOOST_TEST((got == expected));
                    const auto file = dir.path / (std::to_string(j) + "." + m.ext);
                    write_file(file, got);
                    const auto [status, err] = ffmpeg({"-v", "warning", "-i", file.string(), "-f", "null", "-"});
                    BOOST_TEST(status == 0);
                    BOOST_TEST(err.empty(), err);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(chunked_transfer_coding_for_http_1_1_players) {
    output_config cfg = quick;
    cfg.http_chunked = true;
    running_output out(cfg);
    player p11(out.port(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    player p10(out.port(), "GET / HTTP/1.0\r\n\r\n");  // HTTP/1.0 has no chunked coding
    BOOST_TEST_REQUIRE(out.wait_clients(2));
    std::string expected;
    for (std::uint64_t i = 0; i < 30; ++i) {
        const std::string payload(100 + i * 50, static_cast<char>('A' + i));
        out.write(make_chunk(i, ra, payload));
        expected += payload;
    }
    out.end_of_stream();
    BOOST_TEST_REQUIRE(p11.wait_eof());
    const auto r = split_response(p11.data());
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    const auto body = dechunk(r->body);
    BOOST_TEST_REQUIRE(body.has_value());
    BOOST_TEST((*body == expected));
    BOOST_TEST_REQUIRE(p10.wait_eof());
    const auto r10 = split_response(p10.data());
    BOOST_TEST_REQUIRE(r10.has_value());
    BOOST_TEST(r10->head.find("Transfer-Encoding") == std::string::npos);
    BOOST_TEST((r10->body == expected));
}

BOOST_AUTO_TEST_CASE(ffmpeg_plays_over_http_from_mid_stream) {
    const auto chunks = chunk_media(test_media().ts, 8 * 1024);
    output_config cfg = quick;
    cfg.http_chunked = true;
    running_output out(cfg);
    out.write_all(chunks, 0, chunks.size() / 3);
    const std::string url = "http://127.0.0.1:" + std::to_string(out.port()) + "/";
    pixtream::test::subprocess ff({ffmpeg_exe(), "-nostdin", "-v", "warning", "-i", url, "-f", "null", "-"});
    BOOST_TEST_REQUIRE(out.wait_clients(1, 10s));
    out.write_all(chunks, chunks.size() / 3);
    out.end_of_stream();
    const auto status = ff.wait(20s);
    BOOST_TEST_REQUIRE(status.has_value());
    BOOST_TEST(*status == 0);
    const auto err = ff.stderr_text();
    BOOST_TEST(err.empty(), err);
    BOOST_TEST(out.stats().first_byte.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
