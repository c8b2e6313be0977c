// libFuzzer target: wire::frame_decoder fed a byte stream split at fuzzer-chosen points.
//   input := max_frame:u32  mode:u8  split_stream (see fuzz_support.hpp)
//   mode bit 0: read through prepare()/commit(), preparing more than arrives (as a socket read does),
//               instead of feed(); bits 2-7: how much more, in 16-byte steps
//   mode bit 1: construct with the default limit, then set_max_frame(max_frame)
// Properties checked:
//   - every message decoded is the frame it came from: re-encoding it gives those exact bytes, and
//     decoding the re-encoded body gives an equal message;
//   - frames are never longer than the limit; decoded values respect the protocol's limits;
//   - the split does not matter: the same stream fed at once gives the same messages, error and rest;
//   - a stream that stops decoding stops for the reason the bytes give, and the error is sticky.
#include "fuzz_support.hpp"
#include "wire_samples.hpp"

#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"
#include "pixtream/wire/frame_decoder.hpp"

#include <cstring>

using namespace pixtream;

namespace {

struct decoded {
    std::vector<wire::message> messages;
    std::error_code error;
    std::size_t buffered = 0;
};

std::uint32_t load_u32(std::span<const std::uint8_t> at) {
    return (std::uint32_t{at[0]} << 24U) | (std::uint32_t{at[1]} << 16U) | (std::uint32_t{at[2]} << 8U) | at[3];
}

bool same_bytes(const std::vector<std::byte>& a, std::span<const std::uint8_t> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// The values of a decoded message stay inside the limits of docs/protocol.md.
void check_limits(const wire::message& m) {
    if (const auto* h = std::get_if<wire::handshake>(&m)) PIXTREAM_FUZZ_CHECK(h->version == wire::protocol_version);
    if (const auto* b = std::get_if<wire::bitmap>(&m)) {
        PIXTREAM_FUZZ_CHECK(b->bit_count <= wire::max_window);
        PIXTREAM_FUZZ_CHECK(b->bits.size() == (std::size_t{b->bit_count} + 7) / 8);
        // Bit i stands for chunk base + i (checked where base + i does not wrap around).
        for (std::size_t i = 0; i < b->bit_count && b->base.value() + i >= b->base.value(); ++i) {
            const bool bit = ((b->bits[i / 8] >> (7 - i % 8)) & 1U) != 0;
            PIXTREAM_FUZZ_CHECK(b->test(b->base + i) == bit);
        }
        // Ids outside [base, base + bit_count) are not in the map, however far away.
        const std::uint64_t base = b->base.value();
        const std::uint64_t far = std::uint64_t{1} << 63U;
        for (const std::uint64_t id : {base - 1, base + b->bit_count, base + far, base + far - 1, base ^ far, ~base,
                                       std::uint64_t{0}, ~std::uint64_t{0}}) {
            if (id - base < b->bit_count) continue;  // inside (modulo 2^64)
            PIXTREAM_FUZZ_CHECK(!b->test(core::chunk_id{id}));
        }
    }
    if (const auto* c = std::get_if<wire::chunk>(&m)) {
        PIXTREAM_FUZZ_CHECK((c->flags & ~wire::chunk::known_flags) == 0);
        PIXTREAM_FUZZ_CHECK(c->payload.size() <= wire::max_chunk_payload);
    }
    if (const auto* p = std::get_if<wire::peers>(&m)) {
        PIXTREAM_FUZZ_CHECK(p->entries.size() <= wire::max_pex_peers);
        for (const auto& e : p->entries) {
            PIXTREAM_FUZZ_CHECK(e.family == wire::peer_entry::ipv4 || e.family == wire::peer_entry::ipv6);
            PIXTREAM_FUZZ_CHECK(e.port != 0);
        }
    }
    const auto substreams_ok = [](std::uint8_t n, std::uint32_t mask) {
        return n >= 1 && n <= wire::max_substreams && (n == wire::max_substreams || (mask >> n) == 0);
    };
    if (const auto* s = std::get_if<wire::subscribe>(&m)) PIXTREAM_FUZZ_CHECK(substreams_ok(s->substreams, s->mask));
    if (const auto* g = std::get_if<wire::grant>(&m)) PIXTREAM_FUZZ_CHECK(substreams_ok(g->substreams, g->mask));
}

// `frame` holds the length prefix, type and body m was decoded from.
void check_message(const wire::message& m, std::span<const std::uint8_t> frame, std::size_t max_frame) {
    const auto length = load_u32(frame);
    PIXTREAM_FUZZ_CHECK(length >= 1 && length <= max_frame && length <= wire::max_frame_size);
    PIXTREAM_FUZZ_CHECK(static_cast<std::uint8_t>(wire::type_of(m)) == frame[4]);
    PIXTREAM_FUZZ_CHECK(wire::frame_size(m) == frame.size());
    check_limits(m);

    std::vector<std::byte> again;
    wire::encode(m, again);  // throws (and so fails) for a message the protocol cannot carry
    PIXTREAM_FUZZ_CHECK(same_bytes(again, frame));
    std::error_code ec;
    const auto back = wire::decode_body(std::span<const std::byte>(again).subspan(wire::frame_header_size), ec);
    PIXTREAM_FUZZ_CHECK(!ec && back.has_value());
    PIXTREAM_FUZZ_CHECK(*back == m);
    if (const auto* c = std::get_if<wire::chunk>(&m)) {
        // The prefix a writer gathers in front of the payload is the start of the same frame.
        const auto prefix = wire::encode_chunk_prefix(*c);
        PIXTREAM_FUZZ_CHECK(std::memcmp(prefix.data(), frame.data(), prefix.size()) == 0);
    }
}

// Takes every message out of d; returns false once d reports an error.
bool drain(wire::frame_decoder& d, decoded& out) {
    for (;;) {
        std::error_code ec;
        auto m = d.next(ec);
        if (m) {
            PIXTREAM_FUZZ_CHECK(!ec);
            out.messages.push_back(std::move(*m));
            continue;
        }
        if (!ec) return true;
        PIXTREAM_FUZZ_CHECK(ec.category() == wire::wire_category());
        PIXTREAM_FUZZ_CHECK(d.failed());
        out.error = ec;
        // Sticky: asking again gives the same error and no message.
        std::error_code again;
        PIXTREAM_FUZZ_CHECK(!d.next(again).has_value() && again == ec);
        return false;
    }
}

std::vector<wire::message> seed_messages() { return fuzz::sample_session(); }

std::vector<fuzz::seed> make_seeds() {
    using fuzz::seed_writer;
    const auto all = fuzz::encode_all(seed_messages());
    std::vector<fuzz::seed> seeds;
    auto add = [&](std::string name, std::uint32_t max_frame, std::uint8_t mode, const std::vector<std::uint16_t>& splits,
                   std::span<const std::byte> stream) {
        seeds.push_back({std::move(name), seed_writer{}.u32(max_frame).u8(mode).splits(splits).bytes(stream).take()});
    };
    add("all-types-one-read", wire::max_frame_size, 0, {}, all);
    add("all-types-small-reads", wire::max_frame_size, 0x01 | (3U << 2U), {1, 2, 3, 4, 5, 8, 13, 21, 34, 55, 89}, all);
    add("all-types-split-in-headers", wire::max_frame_size, 0x02, {2, 3, 1, 64, 0, 7}, all);
    std::vector<std::uint16_t> bytewise(fuzz::split_stream::max_splits, 1);
    add("bytewise-handshake", wire::max_handshake_frame, 0x03, bytewise,
        fuzz::encode_all({fuzz::sample_handshake(true), wire::keepalive{}}));
    // The chunk (300-byte payload) is over the 256-byte limit: frame_too_large after the handshake.
    add("limit-256", wire::max_handshake_frame, 0x00, {70}, all);
    add("limit-min", 0, 0x02, {}, all);
    for (const auto& m : seed_messages()) {
        const auto one = fuzz::encode_all({m});
        add(std::string("one-") + wire::name_of(wire::type_of(m)) + "-" + std::to_string(one.size()),
            wire::max_frame_size, 0x01, {static_cast<std::uint16_t>(one.size() / 2)}, one);
    }
    // An id beyond max_chunk_id: chunk_id_out_of_range.
    add("id-out-of-range", wire::max_frame_size, 0x00, {},
        fuzz::encode_all({fuzz::sample_handshake(), wire::have{core::chunk_id{wire::max_chunk_id + 1}}}));
    // A stream cut inside its last frame: nothing decoded from it, no error.
    add("partial-last-frame", wire::max_frame_size, 0x00, {},
        std::span<const std::byte>(all).first(all.size() - 5));
    return seeds;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    fuzz::handle_write_seeds(*argc, *argv, make_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input_cursor in({data, size});
    const std::size_t max_frame = in.u32();
    const auto mode = in.u8();
    const auto split = fuzz::split_stream::read(in);
    const auto stream = split.stream;

    const bool use_prepare = (mode & 0x01U) != 0;
    const std::size_t over_prepare = static_cast<std::size_t>(mode >> 2U) * 16;
    auto d = (mode & 0x02U) != 0 ? wire::frame_decoder() : wire::frame_decoder(max_frame);
    if ((mode & 0x02U) != 0) {
        PIXTREAM_FUZZ_CHECK(d.max_frame() == wire::max_frame_size);
        d.set_max_frame(max_frame);
    }
    const auto limit = d.max_frame();
    PIXTREAM_FUZZ_CHECK(limit >= wire::min_frame_limit && limit <= wire::max_frame_size);
    PIXTREAM_FUZZ_CHECK(limit == std::clamp(max_frame, wire::min_frame_limit, wire::max_frame_size));

    // Split feed: check each message against the bytes it came from as it comes out.
    decoded split_out;
    std::size_t fed = 0;
    std::size_t offset = 0;  // stream offset of the next frame
    bool ok = true;
    for (const auto n : split.pieces) {
        const auto piece = stream.subspan(fed, n);
        if (use_prepare) {
            auto buf = d.prepare(n + over_prepare);
            PIXTREAM_FUZZ_CHECK(buf.size() == n + over_prepare);
            if (n > 0) std::memcpy(buf.data(), piece.data(), n);
            d.commit(n);
        } else {
            d.feed(std::as_bytes(piece));
        }
        fed += n;
        const auto before = split_out.messages.size();
        ok = drain(d, split_out) && ok;
        for (auto i = before; i < split_out.messages.size(); ++i) {
            const auto& m = split_out.messages[i];
            PIXTREAM_FUZZ_CHECK(offset + wire::frame_size(m) <= fed);  // decoded from bytes that have arrived
            const auto frame = stream.subspan(offset, wire::frame_size(m));
            check_message(m, frame, limit);
            offset += frame.size();
        }
        PIXTREAM_FUZZ_CHECK(d.buffered() == fed - offset);
    }
    PIXTREAM_FUZZ_CHECK(fed == stream.size());
    split_out.buffered = d.buffered();

    // What is left explains why decoding stopped.
    const auto rest = stream.subspan(offset);
    if (!ok) {
        PIXTREAM_FUZZ_CHECK(rest.size() >= wire::frame_header_size);
        const auto length = load_u32(rest);
        if (split_out.error == wire::errc::empty_frame) {
            PIXTREAM_FUZZ_CHECK(length == 0);
        } else if (split_out.error == wire::errc::frame_too_large) {
            PIXTREAM_FUZZ_CHECK(length > limit);
        } else {
            // A whole frame within the limit whose body does not decode, for the same reason.
            PIXTREAM_FUZZ_CHECK(length >= 1 && length <= limit && rest.size() >= wire::frame_header_size + length);
            std::error_code ec;
            const auto m = wire::decode_body(std::as_bytes(rest.subspan(wire::frame_header_size, length)), ec);
            PIXTREAM_FUZZ_CHECK(!m.has_value() && ec == split_out.error);
        }
    } else if (rest.size() >= wire::frame_header_size) {
        // Only an incomplete frame may be left.
        const auto length = load_u32(rest);
        PIXTREAM_FUZZ_CHECK(length >= 1 && length <= limit && rest.size() < wire::frame_header_size + length);
    }

    // The same stream in one piece gives the same result.
    wire::frame_decoder whole(limit);
    whole.feed(std::as_bytes(stream));
    decoded whole_out;
    drain(whole, whole_out);
    whole_out.buffered = whole.buffered();
    PIXTREAM_FUZZ_CHECK(whole_out.messages == split_out.messages);
    PIXTREAM_FUZZ_CHECK(whole_out.error == split_out.error);
    PIXTREAM_FUZZ_CHECK(whole_out.buffered == split_out.buffered);
    return 0;
}
