// libFuzzer target: the handshake and the session rules, with arbitrary frames from a neighbour.
//   input := mode:u8  split_stream (see fuzz_support.hpp)
//   mode bit 0 set: the stream is one frame body (type byte and body) for wire::decode_body, checked
//                   byte for byte against the HANDSHAKE layout of docs/protocol.md;
//   mode bit 0 clear: the stream is what a neighbour sends, arriving in the given pieces, read the way
//                   peer::session reads it: a frame_decoder limited to max_handshake_frame until the
//                   handshake is in, every message through session_rules::on_receive, the connection
//                   closed on the first error; the accepted BUFFER_MAP and HAVE messages update the
//                   neighbour's core::buffer_map as peer::node does.
// The receiving side is local_channel()/local_peer() (wire_samples.hpp).
#include "fuzz_support.hpp"
#include "wire_samples.hpp"

#include "pixtream/core/buffer_map.hpp"
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"
#include "pixtream/wire/frame_decoder.hpp"
#include "pixtream/wire/session_rules.hpp"

#include <bit>
#include <cstring>
#include <limits>

using namespace pixtream;

namespace {

constexpr std::size_t read_size = 64 * 1024;  // what peer::session prepares for each read

// The session rules of docs/protocol.md, written from the text.
std::error_code expected_error(bool handshake_done, const wire::message& m) {
    const auto* h = std::get_if<wire::handshake>(&m);
    if (handshake_done) return h ? wire::errc::unexpected_handshake : std::error_code{};
    if (!h) return wire::errc::handshake_expected;
    if (h->channel != fuzz::local_channel()) return wire::errc::channel_mismatch;
    if (h->peer == fuzz::local_peer()) return wire::errc::self_connection;
    return {};
}

bool window_wraps(const core::buffer_map& map) {
    return map.base().value() > std::numeric_limits<std::uint64_t>::max() - map.capacity();
}

// Counts through the map's own iteration, and checks it agrees with count() and last_set().
void check_map(const core::buffer_map& map) {
    // Ids on the wire are at most wire::max_chunk_id, so a neighbour's window never reaches 2^64 (where
    // end() would wrap and iteration would miss what count() counts: found by this target).
    PIXTREAM_FUZZ_CHECK(!window_wraps(map));
    std::size_t n = 0;
    std::optional<core::chunk_id> last;
    map.for_each_set([&](core::chunk_id id) {
        PIXTREAM_FUZZ_CHECK(map.in_window(id) && map.test(id));
        PIXTREAM_FUZZ_CHECK(!last || *last < id);
        last = id;
        ++n;
    });
    PIXTREAM_FUZZ_CHECK(n == map.count());
    PIXTREAM_FUZZ_CHECK(map.last_set() == last);
}

// What peer::node does with an accepted BUFFER_MAP or HAVE.
void apply_to_map(core::buffer_map& map, const wire::message& m) {
    if (const auto* b = std::get_if<wire::bitmap>(&m)) {
        map = core::buffer_map(core::buffer_map::max_capacity, b->base);
        b->apply_to(map);
        PIXTREAM_FUZZ_CHECK(map.base() == b->base);
        if (!window_wraps(map)) {
            std::size_t bits = 0;
            for (const auto byte : b->bits) bits += static_cast<std::size_t>(std::popcount(byte));
            PIXTREAM_FUZZ_CHECK(map.count() == bits);
            for (std::size_t i = 0; i < b->bit_count; ++i) PIXTREAM_FUZZ_CHECK(map.test(b->base + i) == b->test(b->base + i));
        }
        check_map(map);
    } else if (const auto* h = std::get_if<wire::have>(&m)) {
        const auto old_base = map.base();
        map.advance_to_fit(h->id);
        const bool stored = map.set(h->id);
        PIXTREAM_FUZZ_CHECK(map.base() >= old_base);  // windows never slide back
        if (!window_wraps(map) && h->id >= old_base) PIXTREAM_FUZZ_CHECK(stored && map.test(h->id));
        check_map(map);
    }
}

// mode bit 0: one body straight into decode_body, checked against the HANDSHAKE layout.
void check_handshake_body(std::span<const std::uint8_t> body) {
    std::error_code ec;
    const auto m = wire::decode_body(std::as_bytes(body), ec);
    PIXTREAM_FUZZ_CHECK(m.has_value() == !ec);
    if (body.empty()) {
        PIXTREAM_FUZZ_CHECK(ec == wire::errc::empty_frame);
        return;
    }
    if (m) {
        std::vector<std::byte> again;
        wire::encode(*m, again);
        PIXTREAM_FUZZ_CHECK(again.size() == wire::frame_header_size + body.size());
        PIXTREAM_FUZZ_CHECK(std::memcmp(again.data() + wire::frame_header_size, body.data(), body.size()) == 0);
    }
    if (body[0] != static_cast<std::uint8_t>(wire::message_type::handshake)) {
        PIXTREAM_FUZZ_CHECK(!std::holds_alternative<wire::handshake>(m.value_or(wire::keepalive{})));
        return;
    }
    const auto fields = body.subspan(1);
    if (fields.size() < wire::handshake_body_size) {
        PIXTREAM_FUZZ_CHECK(ec == wire::errc::truncated_message);
    } else if (fields.size() > wire::handshake_body_size) {
        PIXTREAM_FUZZ_CHECK(ec == wire::errc::trailing_bytes);
    } else if (std::memcmp(fields.data(), wire::magic.data(), wire::magic.size()) != 0) {
        PIXTREAM_FUZZ_CHECK(ec == wire::errc::bad_magic);
    } else if (fields[4] != wire::protocol_version) {
        PIXTREAM_FUZZ_CHECK(ec == wire::errc::unsupported_version);
    } else {
        PIXTREAM_FUZZ_CHECK(!ec);
        const auto& h = std::get<wire::handshake>(*m);
        PIXTREAM_FUZZ_CHECK(h.version == wire::protocol_version);
        PIXTREAM_FUZZ_CHECK(h.flags == fields[5]);  // bits 1-7 are kept as received (and ignored)
        PIXTREAM_FUZZ_CHECK(h.is_source() == ((fields[5] & 1U) != 0));
        PIXTREAM_FUZZ_CHECK(std::memcmp(h.channel.bytes().data(), fields.data() + 6, 32) == 0);
        PIXTREAM_FUZZ_CHECK(std::memcmp(h.peer.bytes().data(), fields.data() + 38, 20) == 0);
        PIXTREAM_FUZZ_CHECK(h.listen_port == ((unsigned{fields[58]} << 8U) | fields[59]));
    }
}

// mode bit 0 clear: a connection's receiving side.
void run_session(const fuzz::split_stream& in) {
    wire::frame_decoder decoder(wire::max_handshake_frame);
    wire::session_rules rules(fuzz::local_channel(), fuzz::local_peer());
    core::buffer_map remote_map(core::buffer_map::max_capacity);
    std::size_t fed = 0;
    for (auto n : in.pieces) {
        do {  // a piece larger than one read arrives in several; an empty piece is a read of 0 bytes
            const auto take = std::min(n, read_size);
            auto buf = decoder.prepare(read_size);
            if (take > 0) std::memcpy(buf.data(), in.stream.data() + fed, take);
            decoder.commit(take);
            fed += take;
            n -= take;
            std::error_code dec;
            for (;;) {
                PIXTREAM_FUZZ_CHECK(decoder.max_frame() == rules.frame_limit());
                const auto limit = rules.frame_limit();
                auto m = decoder.next(dec);
                if (!m) break;
                PIXTREAM_FUZZ_CHECK(wire::frame_size(*m) <= wire::frame_header_size + limit);
                const bool was_done = rules.handshake_done();
                const auto before = rules.remote();
                const auto err = rules.on_receive(*m);
                PIXTREAM_FUZZ_CHECK(err == expected_error(was_done, *m));
                if (err) {
                    PIXTREAM_FUZZ_CHECK(err.category() == wire::wire_category());
                    PIXTREAM_FUZZ_CHECK(rules.remote() == before && rules.handshake_done() == was_done);
                    return;  // the peer closes the connection
                }
                if (!was_done) {
                    PIXTREAM_FUZZ_CHECK(rules.handshake_done());
                    PIXTREAM_FUZZ_CHECK(rules.remote() == std::get<wire::handshake>(*m));
                    PIXTREAM_FUZZ_CHECK(rules.frame_limit() == wire::max_frame_size);
                    decoder.set_max_frame(wire::max_frame_size);
                    continue;
                }
                PIXTREAM_FUZZ_CHECK(rules.remote() == before);
                apply_to_map(remote_map, *m);
            }
            if (dec) {
                PIXTREAM_FUZZ_CHECK(dec.category() == wire::wire_category());
                return;  // the peer closes the connection
            }
        } while (n > 0);
    }
}

std::vector<fuzz::seed> make_seeds() {
    using fuzz::seed_writer;
    std::vector<fuzz::seed> seeds;
    auto add = [&](std::string name, std::uint8_t mode, const std::vector<std::uint16_t>& splits,
                   std::span<const std::byte> stream) {
        seeds.push_back({std::move(name), seed_writer{}.u8(mode).splits(splits).bytes(stream).take()});
    };
    const auto session = fuzz::sample_session();
    const auto all = fuzz::encode_all(session);
    add("session", 0, {}, all);
    add("session-small-reads", 0, {3, 1, 60, 2, 0, 9, 100, 5}, all);

    auto with_first = [&](const wire::message& first) {
        auto msgs = session;
        msgs.front() = first;
        return fuzz::encode_all(msgs);
    };
    add("no-handshake-first", 0, {}, with_first(wire::have{core::chunk_id{9}}));
    auto other_channel = fuzz::sample_handshake();
    other_channel.channel.bytes()[31] ^= std::byte{1};
    add("channel-mismatch", 0, {}, with_first(other_channel));
    auto self = fuzz::sample_handshake();
    self.peer = fuzz::local_peer();
    add("self-connection", 0, {}, with_first(self));
    add("source-handshake", 0, {10}, with_first(fuzz::sample_handshake(true)));
    add("second-handshake", 0, {},
        fuzz::encode_all({fuzz::sample_handshake(), wire::keepalive{}, fuzz::sample_handshake()}));
    add("chunk-before-handshake", 0, {}, with_first(fuzz::sample_chunk(1, 300, 0)));

    // The neighbour's window at the top of the ids the wire carries, HAVEs around it, then one beyond it.
    wire::bitmap high;
    high.base = core::chunk_id{wire::max_chunk_id - 20};
    high.bit_count = 40;
    high.bits = {0xFF, 0x01, 0x80, 0x00, 0x81};
    add("window-near-top", 0, {},
        fuzz::encode_all({fuzz::sample_handshake(), high, wire::have{core::chunk_id{wire::max_chunk_id}},
                          wire::have{core::chunk_id{3}}, wire::have{core::chunk_id{wire::max_chunk_id + 1}}}));
    add("have-jumps", 0, {},
        fuzz::encode_all({fuzz::sample_handshake(), wire::have{core::chunk_id{5}}, wire::have{core::chunk_id{4100}},
                          wire::have{core::chunk_id{4101}}, wire::have{core::chunk_id{200000}},
                          wire::have{core::chunk_id{199000}}}));

    // Handshake bodies straight into decode_body (mode bit 0).
    const auto hs = fuzz::encode_all({fuzz::sample_handshake(true)});
    const auto body = std::span<const std::byte>(hs).subspan(wire::frame_header_size);
    add("handshake-body", 1, {}, body);
    auto bad_magic = std::vector<std::byte>(body.begin(), body.end());
    bad_magic[2] = std::byte{'Y'};
    add("handshake-body-bad-magic", 1, {}, bad_magic);
    auto bad_version = std::vector<std::byte>(body.begin(), body.end());
    bad_version[5] = std::byte{2};
    add("handshake-body-version-2", 1, {}, bad_version);
    add("handshake-body-short", 1, {}, body.first(body.size() - 1));
    return seeds;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    fuzz::handle_write_seeds(*argc, *argv, make_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input_cursor in({data, size});
    const auto mode = in.u8();
    const auto split = fuzz::split_stream::read(in);
    if ((mode & 0x01U) != 0) check_handshake_body(split.stream);
    else run_session(split);
    return 0;
}
