#include "attacks.hpp"

#include "connection.hpp"
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/limits.hpp"
#include "pixtream/wire/signing.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <array>
#include <iostream>
#include <limits>

namespace pixtream::hostile {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::uint64_t top = std::numeric_limits<std::uint64_t>::max();  // 2^64 - 1: out of range
constexpr int small_rcvbuf = 4096;  // our receive buffer when we never read: the victim's writes block soon
constexpr auto stall_keepalive = std::chrono::seconds(5);
constexpr std::size_t stall_round = wire::max_requests_in_flight / 4;
constexpr auto stall_round_interval = std::chrono::milliseconds(100);
constexpr std::size_t stall_sample = 16;  // chunks stall reads first, to pick the largest
constexpr std::size_t flood_batch = 64 * 1024;  // bytes per write of a flood

const std::vector<attack_info> all_attacks{
    {attack::garbage, "garbage", "random bytes (--garbage-bytes) instead of a handshake"},
    {attack::oversized, "oversized",
     "two connections: a frame above the 256-byte handshake limit before the handshake (phase pre-handshake), and "
     "after a valid handshake a frame header claiming max_frame_size + 1 bytes (phase post-handshake)"},
    {attack::out_of_window, "out-of-window",
     "two connections. Phase far-ids: after the handshake, HAVE/REQUEST/CANCEL and largest BUFFER_MAPs with valid "
     "ids far outside any window (0, 2^61, up to max_chunk_id = 2^62 - 1, 2^32 ahead of the live edge): the victim "
     "should REJECT the requests and keep the connection; then a HAVE of 2^64 - 1 (out of range: a violation). "
     "Phase bitmap-size: after the handshake, a BUFFER_MAP with bit count 65535 (more than max_window: a "
     "violation)"},
    {attack::forged, "forged",
     "after the handshake, learns the live edge from the victim's BUFFER_MAP/HAVEs and sends the next chunk signed "
     "by a key that is not the channel's"},
    {attack::request_flood, "request-flood",
     "after the handshake, --flood REQUESTs for chunks the victim holds in one burst, never reading the socket "
     "(the victim may queue 64 and must ban after 256 more)"},
    {attack::have_flood, "have-flood",
     "after the handshake, --flood HAVEs of valid ids (near the live edge, anywhere, near max_chunk_id) and one "
     "BUFFER_MAP of 4096 random bits per 50 HAVEs, in 64 KiB writes; never answers the victim's REQUESTs"},
    {attack::slowloris, "slowloris",
     "two connections: one sends its handshake one byte per --drip-interval (phase drip), one connects and sends "
     "nothing (phase silent); the victim should close both at its handshake timeout"},
    {attack::stall, "stall",
     "after the handshake, REQUESTs the 16 newest chunks the victim holds and reads them; then, never reading again, "
     "REQUESTs the largest of them over and over (16 every 100 ms) until --stall-bytes are asked for, and sends "
     "KEEPALIVE every 5 s so that the victim's idle timeout cannot end it: its write timeout must"},
    {attack::probe, "probe",
     "a valid handshake and nothing else: reports whether the victim admits (BUFFER_MAP) and keeps the "
     "connection; a banned --peer-id or endpoint is closed right after the handshake"},
};

clock::duration seconds(double s) { return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s)); }

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// Appends m's frame to out. (wire::encode reserves exactly what it appends: growing one buffer by
// many frames through it alone would copy the buffer once per frame.)
void append(std::vector<std::byte>& out, const wire::message& m) {
    const auto need = out.size() + wire::frame_size(m);
    if (out.capacity() < need) out.reserve(2 * need);
    wire::encode(m, out);
}

std::vector<std::byte> frame(const wire::message& m) {
    std::vector<std::byte> out;
    wire::encode(m, out);
    return out;
}

void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>((v >> shift) & 0xFFU));
}

void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>((v >> shift) & 0xFFU));
}

wire::handshake handshake_of(const context& ctx, const core::peer_id& id) {
    wire::handshake h;
    h.channel = ctx.opt.channel;
    h.peer = id;
    h.listen_port = ctx.opt.listen_port;
    return h;
}

// --peer-id, else a fresh random id (never from the seeded generator: runs with the same --seed must not
// share an id, or a ban of one run would refuse the next).
core::peer_id pick_id(context& ctx) {
    if (ctx.opt.peer_id) return *ctx.opt.peer_id;
    std::random_device rd;
    return core::peer_id::random(rd);
}

clock::time_point end_of(const context& ctx, const connection& c) { return c.started() + seconds(ctx.opt.duration); }

bool never() { return false; }

// Connects (counting the successes); false when the attack cannot go on.
asio::awaitable<bool> open(context* ctx, connection* c, std::optional<int> rcvbuf = std::nullopt) {
    const bool ok = co_await c->connect(ctx->opt.victim, seconds(ctx->opt.connect_timeout), rcvbuf);
    if (ok) ++ctx->connected;
    co_return ok;
}

// Sends our handshake and waits (bounded) until the victim admits us (its BUFFER_MAP) or closes.
asio::awaitable<bool> handshake(context* ctx, connection* c) {
    const auto end = end_of(*ctx, *c);
    if (!co_await c->send(frame(handshake_of(*ctx, c->id())), end)) co_return false;
    if (!co_await c->read_until([c] { return c->admitted(); }, end)) {
        c->set_error(c->closed() ? "the victim closed the connection after the handshake" : "not admitted in time");
        co_return false;
    }
    co_return true;
}

// Waits (bounded) until the victim has told us of chunks it holds.
asio::awaitable<bool> learn_held(context* ctx, connection* c) {
    if (!co_await c->read_until([c] { return !c->held().empty(); }, end_of(*ctx, *c))) {
        c->set_error(c->closed() ? "the victim closed the connection" : "the victim announced no chunk in time");
        co_return false;
    }
    co_return true;
}

void finish(context* ctx, connection& c) {
    c.close();
    ctx->emit(c.report());
}

// ---- the attacks --------------------------------------------------------------------------------------

asio::awaitable<void> garbage(context* ctx, int index) {
    connection c(ctx->executor, "garbage", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c)) {
        std::vector<std::byte> junk(ctx->opt.garbage_bytes);
        for (auto& b : junk) b = static_cast<std::byte>(ctx->rng() & 0xFFU);
        c.details()["garbage_bytes"] = junk.size();
        c.mark_attack();
        co_await c.send(junk, end_of(*ctx, c));
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> oversized_before_handshake(context* ctx, int index) {
    connection c(ctx->executor, "oversized", "pre-handshake", index, pick_id(*ctx));
    if (co_await open(ctx, &c)) {
        // A HANDSHAKE frame one byte above the limit: a valid handshake padded with zeros.
        const auto length = static_cast<std::uint32_t>(wire::max_handshake_frame + 1);
        auto hs = frame(handshake_of(*ctx, c.id()));
        std::vector<std::byte> bytes;
        put_u32(bytes, length);
        bytes.insert(bytes.end(), hs.begin() + 4, hs.end());
        bytes.resize(4 + length, std::byte{0});
        c.details()["claimed_length"] = length;
        c.mark_attack();
        co_await c.send(bytes, end_of(*ctx, c));
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> oversized_after_handshake(context* ctx, int index) {
    connection c(ctx->executor, "oversized", "post-handshake", index, pick_id(*ctx));
    if (co_await open(ctx, &c) && co_await handshake(ctx, &c)) {
        const auto length = static_cast<std::uint32_t>(wire::max_frame_size + 1);
        std::vector<std::byte> bytes;
        put_u32(bytes, length);
        bytes.push_back(std::byte{static_cast<std::uint8_t>(wire::message_type::chunk)});
        bytes.resize(bytes.size() + 4096, std::byte{0});  // the start of the body; the rest never comes
        c.details()["claimed_length"] = length;
        c.mark_attack();
        co_await c.send(bytes, end_of(*ctx, c));
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> oversized(context* ctx, int index) {
    co_await (oversized_before_handshake(ctx, index) && oversized_after_handshake(ctx, index));
}

// The largest valid BUFFER_MAP (4096 bits, all set) at `base`.
wire::bitmap full_bitmap(std::uint64_t base) {
    wire::bitmap b;
    b.base = core::chunk_id{base};
    b.bit_count = static_cast<std::uint16_t>(wire::max_window);
    b.bits.assign(wire::max_window / 8, 0xFF);
    return b;
}

asio::awaitable<void> out_of_window_far_ids(context* ctx, int index) {
    connection c(ctx->executor, "out-of-window", "far-ids", index, pick_id(*ctx));
    if (co_await open(ctx, &c) && co_await handshake(ctx, &c)) {
        const auto end = end_of(*ctx, c);
        // Valid ids (at most max_chunk_id) far from any window: at both ends of the id space and far
        // ahead of and behind the live edge.
        std::vector<std::uint64_t> far_ids{0, 1, wire::max_chunk_id / 2, wire::max_chunk_id - wire::max_window + 1,
                                           wire::max_chunk_id};
        if (const auto edge = c.live_edge()) {
            far_ids.push_back(edge->value() + (std::uint64_t{1} << 32U));
            far_ids.push_back(edge->value() - 2 * wire::max_window);
        }
        std::vector<std::byte> bytes;
        std::size_t messages = 0;
        for (const auto v : far_ids) {
            append(bytes, wire::have{core::chunk_id{v}});
            append(bytes, wire::request{core::chunk_id{v}});
            append(bytes, wire::cancel{core::chunk_id{v}});
            messages += 3;
        }
        // Buffer maps of the largest size at far bases; at the top the window reaches past max_chunk_id.
        for (const auto base : {wire::max_chunk_id, wire::max_chunk_id - 100, wire::max_chunk_id / 2, std::uint64_t{0}}) {
            append(bytes, full_bitmap(base));
            ++messages;
        }
        append(bytes, wire::keepalive{});
        ++messages;
        const auto requests = far_ids.size();
        c.details()["valid_messages"] = messages;
        c.details()["requests"] = requests;
        co_await c.send(bytes, end);
        // Valid messages: the victim answers each REQUEST with REJECT and keeps the connection.
        co_await c.read_until([&] { return c.count(wire::message_type::reject) >= requests; },
                              std::min(end, clock::now() + std::chrono::seconds(3)));
        c.details()["rejects_before_violation"] = c.count(wire::message_type::reject);
        c.details()["open_after_valid_messages"] = !c.closed();
        if (!c.closed()) {
            // Then an id near 2^64: above max_chunk_id, a violation (chunk_id_out_of_range).
            c.details()["violation"] = "HAVE 2^64-1";
            c.mark_attack();
            co_await c.send(frame(wire::have{core::chunk_id{top}}), end);
            co_await c.read_until(never, end);
        }
    }
    finish(ctx, c);
}

asio::awaitable<void> out_of_window_bitmap_size(context* ctx, int index) {
    connection c(ctx->executor, "out-of-window", "bitmap-size", index, pick_id(*ctx));
    if (co_await open(ctx, &c) && co_await handshake(ctx, &c)) {
        // A BUFFER_MAP the format can express but the protocol forbids: 65535 bits (bitmap_too_large).
        std::vector<std::byte> absurd;
        const std::size_t bit_count = 0xFFFF;
        put_u32(absurd, static_cast<std::uint32_t>(1 + 10 + (bit_count + 7) / 8));
        absurd.push_back(std::byte{static_cast<std::uint8_t>(wire::message_type::buffer_map)});
        put_u64(absurd, c.live_edge() ? c.live_edge()->value() : 0);
        absurd.push_back(std::byte{0xFF});
        absurd.push_back(std::byte{0xFF});
        absurd.resize(absurd.size() + (bit_count + 7) / 8, std::byte{0xFF});
        absurd.back() = std::byte{0xFE};  // the padding bit is zero: only the count is wrong
        c.details()["violation"] = "BUFFER_MAP of 65535 bits";
        c.mark_attack();
        co_await c.send(absurd, end_of(*ctx, c));
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> out_of_window(context* ctx, int index) {
    co_await (out_of_window_far_ids(ctx, index) && out_of_window_bitmap_size(ctx, index));
}

asio::awaitable<void> forged(context* ctx, int index) {
    connection c(ctx->executor, "forged", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c) && co_await handshake(ctx, &c) && co_await learn_held(ctx, &c)) {
        // The chunk the victim will want next, as plausible as we can make it, signed by another key.
        wire::chunk fake;
        fake.id = *c.live_edge() + 1;
        fake.timestamp = wall_now();
        fake.flags = wire::chunk::flag_random_access;
        std::array<std::byte, 188> null_packet{};
        null_packet.fill(std::byte{0xFF});
        null_packet[0] = std::byte{0x47};
        null_packet[1] = std::byte{0x1F};
        null_packet[2] = std::byte{0xFF};
        null_packet[3] = std::byte{0x10};
        for (int i = 0; i < 16; ++i) fake.payload.insert(fake.payload.end(), null_packet.begin(), null_packet.end());
        wire::sign_chunk(fake, wire::generate_keypair().secret);
        c.details()["forged_id"] = fake.id.value();
        c.details()["payload_bytes"] = fake.payload.size();
        c.mark_attack();
        co_await c.send(frame(fake), end_of(*ctx, c));
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> request_flood(context* ctx, int index) {
    connection c(ctx->executor, "request-flood", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c, small_rcvbuf) && co_await handshake(ctx, &c) && co_await learn_held(ctx, &c)) {
        const auto held = c.held();
        std::vector<std::byte> bytes;
        for (std::size_t i = 0; i < ctx->opt.flood; ++i) append(bytes, wire::request{held[held.size() - 1 - i % held.size()]});
        c.details()["requests"] = ctx->opt.flood;
        c.details()["distinct_ids"] = std::min(held.size(), ctx->opt.flood);
        c.mark_attack();
        if (co_await c.send(bytes, end_of(*ctx, c))) co_await c.wait_closed_unread(end_of(*ctx, c), std::nullopt);
        c.details()["unread_bytes"] = c.unread_bytes();
        // Afterwards only: what the victim managed to send (what is still in our buffers).
        co_await c.read_until(never, clock::now());
    }
    finish(ctx, c);
}

asio::awaitable<void> stall(context* ctx, int index) {
    connection c(ctx->executor, "stall", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c, small_rcvbuf) && co_await handshake(ctx, &c) && co_await learn_held(ctx, &c)) {
        const auto end = end_of(*ctx, c);
        // First, reading: one copy of each of the newest chunks, to find the largest.
        const auto held = c.held();
        const auto sample = std::min(held.size(), stall_sample);
        std::vector<std::byte> bytes;
        for (std::size_t i = 0; i < sample; ++i) append(bytes, wire::request{held[held.size() - 1 - i]});
        if (!co_await c.send(bytes, end)) {
            finish(ctx, c);
            co_return;
        }
        const auto answered = [&c, sample] {
            return c.count(wire::message_type::chunk) + c.count(wire::message_type::reject) >= sample;
        };
        co_await c.read_until(answered, std::min(end, clock::now() + std::chrono::seconds(5)));
        const auto largest = c.largest_chunk();
        if (!largest) {
            c.set_error(c.closed() ? "the victim closed the connection" : "the victim sent no chunk");
            finish(ctx, c);
            co_return;
        }
        // Then never reading again: that chunk over and over until --stall-bytes are asked for, in
        // rounds of a quarter of the in-flight limit, which a busy victim still drains between rounds.
        const auto frame_bytes = largest->second + wire::chunk_body_overhead + 5;
        const auto wanted = (ctx->opt.stall_bytes + frame_bytes - 1) / frame_bytes;
        c.details()["chunk_id"] = largest->first.value();
        c.details()["chunk_bytes"] = largest->second;
        std::size_t sent = 0;
        c.mark_attack();
        auto next_round = clock::now();
        while (sent < wanted && !c.closed() && clock::now() < end) {
            bytes.clear();
            for (std::size_t i = 0; i < stall_round && sent < wanted; ++i, ++sent) append(bytes, wire::request{largest->first});
            if (!co_await c.send(bytes, end)) break;
            next_round += stall_round_interval;
            co_await c.wait_closed_unread(std::min(end, next_round), stall_keepalive);
        }
        c.details()["requests"] = sent;
        co_await c.wait_closed_unread(end, stall_keepalive);
        c.details()["unread_bytes"] = c.unread_bytes();
        co_await c.read_until(never, clock::now());  // afterwards only: what the victim managed to send
    }
    finish(ctx, c);
}

asio::awaitable<void> have_flood(context* ctx, int index) {
    connection c(ctx->executor, "have-flood", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c) && co_await handshake(ctx, &c)) {
        const auto end = end_of(*ctx, c);
        // Around the live edge: from a window behind it to a window ahead.
        const std::uint64_t edge = c.live_edge() ? c.live_edge()->value() : 0;
        const std::uint64_t low = edge > wire::max_window ? edge - wire::max_window : 0;
        std::uniform_int_distribution<std::uint64_t> near(0, 2 * wire::max_window);
        std::size_t haves = 0;
        std::size_t bitmaps = 0;
        std::vector<std::byte> bytes;
        c.mark_attack();
        while (haves < ctx->opt.flood && !c.closed() && clock::now() < end) {
            bytes.clear();
            while (bytes.size() < flood_batch && haves < ctx->opt.flood) {
                std::uint64_t id = 0;
                switch (haves % 10) {
                case 0: id = ctx->rng() % (wire::max_chunk_id + 1); break;               // anywhere
                case 1: id = wire::max_chunk_id - ctx->rng() % wire::max_window; break;  // at the top
                default: id = low + near(ctx->rng); break;                                // around the live edge
                }
                append(bytes, wire::have{core::chunk_id{id}});
                if (++haves % 50 == 0) {
                    wire::bitmap b;
                    b.base = core::chunk_id{low + near(ctx->rng)};
                    b.bit_count = static_cast<std::uint16_t>(wire::max_window);
                    b.bits.resize(wire::max_window / 8);
                    for (auto& x : b.bits) x = static_cast<std::uint8_t>(ctx->rng() & 0xFFU);
                    append(bytes, b);
                    ++bitmaps;
                }
            }
            if (!co_await c.send(bytes, end)) break;
            co_await c.read_until(never, clock::now());  // what the victim sent meanwhile (its REQUESTs)
        }
        c.details()["haves"] = haves;
        c.details()["bitmaps"] = bitmaps;
        co_await c.read_until(never, end);
        c.details()["requests_received"] = c.count(wire::message_type::request);
    }
    finish(ctx, c);
}

asio::awaitable<void> slowloris_drip(context* ctx, int index) {
    connection c(ctx->executor, "slowloris", "drip", index, pick_id(*ctx));
    if (co_await open(ctx, &c)) {
        const auto end = end_of(*ctx, c);
        const auto hs = frame(handshake_of(*ctx, c.id()));
        std::size_t sent = 0;
        c.mark_attack();
        while (sent < hs.size() && !c.closed() && clock::now() < end) {
            if (!co_await c.send(std::span(hs).subspan(sent, 1), end)) break;
            ++sent;
            co_await c.read_until(never, std::min(end, clock::now() + seconds(ctx->opt.drip_interval)));
        }
        c.details()["bytes_dripped"] = sent;
        c.details()["drip_interval_s"] = ctx->opt.drip_interval;
        c.details()["handshake_completed"] = sent == hs.size();
        if (sent == hs.size()) co_await c.read_until([&c] { return c.admitted(); }, end);
        co_await c.read_until(never, end);
    }
    finish(ctx, c);
}

asio::awaitable<void> slowloris_silent(context* ctx, int index) {
    connection c(ctx->executor, "slowloris", "silent", index, pick_id(*ctx));
    if (co_await open(ctx, &c)) {
        c.mark_attack();
        co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

asio::awaitable<void> slowloris(context* ctx, int index) {
    co_await (slowloris_drip(ctx, index) && slowloris_silent(ctx, index));
}

asio::awaitable<void> probe(context* ctx, int index) {
    connection c(ctx->executor, "probe", "", index, pick_id(*ctx));
    if (co_await open(ctx, &c)) {
        c.mark_attack();
        if (co_await c.send(frame(handshake_of(*ctx, c.id())), end_of(*ctx, c)))
            co_await c.read_until(never, end_of(*ctx, c));
    }
    finish(ctx, c);
}

}  // namespace

const std::vector<attack_info>& attacks() { return all_attacks; }

std::optional<attack> parse_attack(std::string_view name) {
    for (const auto& a : all_attacks) {
        if (a.name == name) return a.kind;
    }
    return std::nullopt;
}

std::string_view name_of(attack a) {
    for (const auto& i : all_attacks) {
        if (i.kind == a) return i.name;
    }
    return "?";
}

asio::awaitable<void> run(context* ctx, attack a, int index) {
    try {
        switch (a) {
        case attack::garbage: co_await garbage(ctx, index); break;
        case attack::oversized: co_await oversized(ctx, index); break;
        case attack::out_of_window: co_await out_of_window(ctx, index); break;
        case attack::forged: co_await forged(ctx, index); break;
        case attack::request_flood: co_await request_flood(ctx, index); break;
        case attack::have_flood: co_await have_flood(ctx, index); break;
        case attack::slowloris: co_await slowloris(ctx, index); break;
        case attack::stall: co_await stall(ctx, index); break;
        case attack::probe: co_await probe(ctx, index); break;
        }
    } catch (const std::exception& e) {
        // A bug of this tool, never the victim's doing: say so rather than lose the report silently.
        std::cerr << "pixtream-hostile: attack " << name_of(a) << " connection " << index << " failed: " << e.what()
                  << '\n';
    }
}

}  // namespace pixtream::hostile
