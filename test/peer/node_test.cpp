#include "pixtream/peer/node.hpp"
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "pixtream/wire/signing.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <random>
#include <thread>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace pixtream;
using namespace std::chrono_literals;

namespace {

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

core::peer_id id_of(int n) {
    core::peer_id p;
    p.bytes()[0] = static_cast<std::byte>(n + 1);
    return p;
}

peer::node_config config(const core::channel_key& key, int n, bool source) {
    peer::node_config c;
    c.channel = key;
    c.self = id_of(n);
    c.is_source = source;
    c.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    c.buffer = 600ms;
    c.seed = static_cast<std::uint64_t>(n);
    return c;
}

struct viewer {
    std::shared_ptr<peer::node> node;
    std::vector<wire::chunk_ptr> played;
    int gaps = 0;
    bool ended = false;
};

// Publishes `count` signed chunks every `period`, the last one marked end of stream.
asio::awaitable<void> produce(std::shared_ptr<peer::node> source, wire::secret_key key, int count,
                              core::duration period, std::vector<wire::chunk_ptr>* published,
                              std::size_t min_size = 2000) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::mt19937 gen(5);
    for (int i = 0; i < count; ++i) {
        wire::chunk c;
        c.id = core::chunk_id{static_cast<std::uint64_t>(i)};
        c.timestamp = wall_now();
        c.flags = wire::chunk::flag_random_access;
        if (i + 1 == count) c.flags |= wire::chunk::flag_end_of_stream;
        c.payload.resize(min_size + gen() % (3 * min_size));
        for (auto& b : c.payload) b = static_cast<std::byte>(gen());
        wire::sign_chunk(c, key);
        auto ptr = std::make_shared<const wire::chunk>(std::move(c));
        published->push_back(ptr);
        source->publish(ptr);
        timer.expires_after(period);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
};

}  // namespace

BOOST_AUTO_TEST_SUITE(node_suite)

// A source and five peers: every peer plays every chunk from where it joined to the end, in order,
// byte for byte, and gets the end of the stream. With `push_substreams`, through push trees.
void run_swarm(unsigned push_substreams) {
    // The trees take a few seconds to form (observations, answers): a longer stream for them, and a
    // lighter one (about 200 kbit/s), so that the uplink the viewers assume before they measured one
    // (1 Mbit/s) has room for all their children.
    const std::size_t count = push_substreams == 0 ? 80 : 250;
    const std::size_t min_size = push_substreams == 0 ? 2000 : 500;
    asio::io_context io;
    const auto kp = wire::generate_keypair();
    auto source_cfg = config(kp.public_key, 0, true);
    source_cfg.push_substreams = push_substreams;
    auto source = std::make_shared<peer::node>(io.get_executor(), source_cfg);
    std::vector<std::unique_ptr<viewer>> viewers;
    for (int i = 1; i <= 5; ++i) {
        auto v = std::make_unique<viewer>();
        auto cfg = config(kp.public_key, i, false);
        cfg.push_substreams = push_substreams;
        v->node = std::make_shared<peer::node>(io.get_executor(), cfg);
        v->node->add_candidate("127.0.0.1", source->local_endpoint().port());
        if (i > 1) v->node->add_candidate("127.0.0.1", viewers.front()->node->local_endpoint().port());
        auto* raw = v.get();
        v->node->on_playback({[raw](const wire::chunk_ptr& c) { raw->played.push_back(c); }, [raw] { ++raw->gaps; },
                              [raw](const wire::chunk_ptr&) { raw->ended = true; }});
        viewers.push_back(std::move(v));
    }
    asio::co_spawn(io, source->run(), rethrow);
    for (auto& v : viewers) asio::co_spawn(io, v->node->run(), rethrow);
    std::vector<wire::chunk_ptr> published;
    asio::co_spawn(io, produce(source, kp.secret, static_cast<int>(count), 40ms, &published, min_size), rethrow);

    // Run until every viewer has seen the end (bounded), then stop everything.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        io.run_for(50ms);
        if (std::all_of(viewers.begin(), viewers.end(), [](const auto& v) { return v->ended; })) break;
    }
    // The trees as they stand at the end (stopping closes every connection).
    std::vector<peer::node_stats> trees;
    for (auto& v : viewers) trees.push_back(v->node->stats());
    const auto source_tree = source->stats();
    source->stop();
    for (auto& v : viewers) v->node->stop();
    io.run_for(1s);

    BOOST_TEST_REQUIRE(published.size() == count);
    for (std::size_t i = 0; i < viewers.size(); ++i) {
        BOOST_TEST_CONTEXT("viewer " << i + 1) {
            const auto& v = *viewers[i];
            BOOST_TEST_REQUIRE(v.ended);
            BOOST_TEST_REQUIRE(!v.played.empty());
            const auto first = v.played.front()->id.value();
            BOOST_TEST(v.played.size() == count - first);
            BOOST_TEST(v.gaps == 0);
            for (std::size_t k = 0; k < v.played.size(); ++k) {
                BOOST_TEST_REQUIRE((v.played[k]->id == core::chunk_id{first + k}));
                BOOST_TEST_REQUIRE((v.played[k]->payload == published[first + k]->payload));
            }
            const auto st = v.node->stats();
            BOOST_TEST(st.playout.continuity() == 1.0);
            BOOST_TEST(st.bad_chunks == 0U);
        }
    }
    // The source uploaded far less than one copy per viewer.
    const auto src = source->stats();
    BOOST_TEST(src.chunks_published == count);
    BOOST_TEST_MESSAGE("source upload ratio "
                       << static_cast<double>(src.payload_bytes_out) / static_cast<double>(src.bytes_published));
    BOOST_TEST(static_cast<double>(src.payload_bytes_out) < 1.5 * static_cast<double>(src.bytes_published),
               "source uploaded " << src.payload_bytes_out << " for " << src.bytes_published);
    std::uint64_t requests = 0;
    for (const auto& st : trees) requests += st.scheduler.requests;
    BOOST_TEST_MESSAGE(push_substreams << " substreams: " << requests << " requests by all viewers");
    if (push_substreams == 0) {
        BOOST_TEST(source_tree.tree_children == 0U);
        return;
    }
    // The source grants each substream to one child, one substream each; every viewer has a parent
    // for every substream, and nearly every chunk came pushed, not requested.
    BOOST_TEST(source_tree.tree_children == push_substreams);
    for (std::size_t i = 0; i < trees.size(); ++i) {
        BOOST_TEST_MESSAGE("viewer " << i + 1 << ": " << trees[i].tree_parents << " parents, " << trees[i].tree_children
                                     << " of " << trees[i].tree_capacity << " children, " << trees[i].tree.subscribes
                                     << " subscribes, " << trees[i].tree.refusals << " refusals, "
                                     << trees[i].tree.parent_changes << " changes, " << trees[i].scheduler.requests
                                     << " requests, " << trees[i].neighbours << " neighbours");
        BOOST_TEST_CONTEXT("viewer " << i + 1) { BOOST_TEST(trees[i].tree_parents == push_substreams); }
    }
    BOOST_TEST(requests < count, requests << " requests for " << count << " chunks to 5 viewers");
}

BOOST_AUTO_TEST_CASE(swarm_plays_every_chunk_in_order) { run_swarm(0); }

BOOST_AUTO_TEST_CASE(push_trees_play_every_chunk_in_order) { run_swarm(4); }

// A neighbour that sends a chunk with a bad signature is disconnected and banned; a genuine chunk
// from the same connection never arrives.
BOOST_AUTO_TEST_CASE(forged_chunk_gets_the_sender_banned) {
    asio::io_context io;
    const auto kp = wire::generate_keypair();
    auto victim = std::make_shared<peer::node>(io.get_executor(), config(kp.public_key, 1, false));
    asio::co_spawn(io, victim->run(), rethrow);
    std::thread loop([&] { io.run_for(30s); });  // returns once the victim has stopped

    asio::io_context cio;
    auto hostile = [&](bool forge) {
        tcp::socket s(cio);
        s.connect(victim->local_endpoint());
        timeval tv{5, 0};  // a victim that never closes fails the test instead of hanging it
        ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        wire::handshake h;
        h.channel = kp.public_key;
        h.peer = id_of(9);
        h.listen_port = 4444;
        std::vector<std::byte> out;
        wire::encode(h, out);
        wire::chunk c;
        c.id = core::chunk_id{3};
        c.payload.assign(100, std::byte{1});
        wire::sign_chunk(c, kp.secret);
        if (forge) c.payload[0] = std::byte{2};
        wire::encode(c, out);
        boost::system::error_code ec;
        asio::write(s, asio::buffer(out), ec);
        // The victim answers (handshake, bitmap) and then closes: read until EOF.
        std::array<char, 4096> buf{};
        std::size_t total = 0;
        while (!ec) total += s.read_some(asio::buffer(buf), ec);
        return ec;
    };
    const auto ec = hostile(true);
    BOOST_TEST((ec == asio::error::eof || ec == asio::error::connection_reset), ec.message());
    // Back again with the same identity: refused right after the handshake.
    const auto again = hostile(false);
    BOOST_TEST((again == asio::error::eof || again == asio::error::connection_reset));
    asio::post(io, [&] { victim->stop(); });
    loop.join();
    const auto st = victim->stats();
    BOOST_TEST(st.bad_chunks == 1U);
    BOOST_TEST(st.chunks_in == 0U);
    BOOST_TEST(victim->banned(id_of(9), "127.0.0.1", 4444));
}

// The node-wide token bucket paces uploads: 600 KB through a 150 KB/s limit (burst 256 KiB) cannot
// reach the viewer sooner than (600 KB - burst) / rate. A lower bound only: a loaded machine is slower.
BOOST_AUTO_TEST_CASE(upload_limit_paces_the_uploads) {
    asio::io_context io;
    const auto kp = wire::generate_keypair();
    auto scfg = config(kp.public_key, 0, true);
    scfg.upload_limit = 150'000;
    auto source = std::make_shared<peer::node>(io.get_executor(), scfg);
    auto viewer = std::make_shared<peer::node>(io.get_executor(), config(kp.public_key, 1, false));
    viewer->add_candidate("127.0.0.1", source->local_endpoint().port());
    asio::co_spawn(io, source->run(), rethrow);
    asio::co_spawn(io, viewer->run(), rethrow);
    const auto until_connected = std::chrono::steady_clock::now() + 10s;
    while (source->stats().neighbours == 0 && std::chrono::steady_clock::now() < until_connected) io.run_for(10ms);
    BOOST_TEST_REQUIRE(source->stats().neighbours == 1U);

    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < 30; ++i) {
        wire::chunk c;
        c.id = core::chunk_id{i};
        c.timestamp = wall_now();
        c.flags = wire::chunk::flag_random_access;
        c.payload.assign(20'000, static_cast<std::byte>(i));
        wire::sign_chunk(c, kp.secret);
        source->publish(std::make_shared<const wire::chunk>(std::move(c)));
    }
    const auto deadline = start + 30s;
    while (viewer->store().map().count() < 30 && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    source->stop();
    viewer->stop();
    io.run_for(1s);
    BOOST_TEST_REQUIRE(viewer->store().map().count() == 30U);
    const double burst = 256.0 * 1024;
    BOOST_TEST(elapsed >= (600'000.0 - burst) / 150'000.0, "600 KB arrived in " << elapsed << " s");
    BOOST_TEST(source->stats().payload_bytes_out >= 600'000U);
}

// A node whose upload backlog is over max_upload_backlog REJECTs further requests at once (so the
// requester turns elsewhere) and serves the ones it accepted intact.
BOOST_AUTO_TEST_CASE(upload_backlog_rejects_requests_beyond_it) {
    asio::io_context io;
    const auto kp = wire::generate_keypair();
    auto scfg = config(kp.public_key, 0, true);
    scfg.upload_limit = 50'000;                     // B/s
    scfg.max_upload_backlog = 500ms;                // 25 KB: two 20 KB chunks at most
    scfg.source_fresh = core::duration::zero();     // serve every chunk on request
    auto source = std::make_shared<peer::node>(io.get_executor(), scfg);
    std::vector<wire::chunk_ptr> chunks;
    for (std::uint64_t i = 0; i < 10; ++i) {
        wire::chunk c;
        c.id = core::chunk_id{i};
        c.timestamp = wall_now();
        c.flags = wire::chunk::flag_random_access;
        c.payload.assign(20'000, static_cast<std::byte>(i));
        wire::sign_chunk(c, kp.secret);
        chunks.push_back(std::make_shared<const wire::chunk>(std::move(c)));
        source->publish(chunks.back());
    }
    asio::co_spawn(io, source->run(), rethrow);
    std::thread loop([&] { io.run_for(30s); });

    asio::io_context cio;
    tcp::socket s(cio);
    s.connect(source->local_endpoint());
    timeval tv{10, 0};  // a node that never answers fails the test instead of hanging it
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    wire::handshake h;
    h.channel = kp.public_key;
    h.peer = id_of(9);
    std::vector<std::byte> out;
    wire::encode(h, out);
    for (std::uint64_t i = 0; i < 10; ++i) wire::encode(wire::request{core::chunk_id{i}}, out);
    asio::write(s, asio::buffer(out));
    wire::frame_decoder dec;
    std::size_t served = 0;
    std::size_t rejected = 0;
    boost::system::error_code ec;
    while (served + rejected < 10 && !ec) {
        auto buf = dec.prepare(64 * 1024);
        dec.commit(s.read_some(asio::buffer(buf.data(), buf.size()), ec));
        std::error_code derr;
        while (auto m = dec.next(derr)) {
            if (const auto* c = std::get_if<wire::chunk>(&*m)) {
                ++served;
                BOOST_TEST((c->payload == chunks.at(c->id.value())->payload));
            } else if (std::get_if<wire::reject>(&*m)) {
                ++rejected;
            }
        }
        BOOST_TEST_REQUIRE(!derr);
    }
    asio::post(io, [&] { source->stop(); });
    loop.join();
    BOOST_TEST_REQUIRE(!ec, ec.message());
    BOOST_TEST(served >= 1U);
    BOOST_TEST(served <= 4U);  // the backlog bound, give or take what left while the requests came in
    BOOST_TEST(rejected == 10U - served);
    BOOST_TEST(source->stats().rejects_sent == rejected);
}

BOOST_AUTO_TEST_SUITE_END()
