#include "pixtream/wire/codec.hpp"

#include "bytes.hpp"
#include "pixtream/wire/error.hpp"

#include <stdexcept>
#include <type_traits>

namespace pixtream::wire {
namespace {

using detail::reader;
using detail::writer;

std::size_t address_size(std::uint8_t family) noexcept { return family == peer_entry::ipv6 ? 16 : 4; }

// Body size (without the type byte) of each message.
std::size_t body_size(const keepalive&) noexcept { return 0; }
std::size_t body_size(const handshake&) noexcept { return handshake_body_size; }
std::size_t body_size(const bitmap& b) noexcept { return 10 + (std::size_t{b.bit_count} + 7) / 8; }
std::size_t body_size(const have&) noexcept { return 8; }
std::size_t body_size(const request&) noexcept { return 8; }
std::size_t body_size(const cancel&) noexcept { return 8; }
std::size_t body_size(const reject&) noexcept { return 8; }
std::size_t body_size(const chunk& c) noexcept { return chunk_body_overhead + c.payload.size(); }
std::size_t body_size(const subscribe&) noexcept { return 5; }
std::size_t body_size(const grant&) noexcept { return 5; }
std::size_t body_size(const peers& p) noexcept {
    std::size_t n = 1;
    for (const auto& e : p.entries) n += 20 + 1 + address_size(e.family) + 2;
    return n;
}

void put_body(writer&, const keepalive&) {}

void put_body(writer& w, const handshake& h) {
    w.put_bytes(magic);
    w.put(h.version);
    w.put(h.flags);
    w.put_bytes(h.channel.bytes());
    w.put_bytes(h.peer.bytes());
    w.put(h.listen_port);
}

void put_body(writer& w, const bitmap& b) {
    w.put(b.base.value());
    w.put(b.bit_count);
    const auto n = (std::size_t{b.bit_count} + 7) / 8;
    for (std::size_t i = 0; i < n; ++i) {
        auto byte = i < b.bits.size() ? b.bits[i] : std::uint8_t{0};
        if (i + 1 == n && b.bit_count % 8 != 0) byte = static_cast<std::uint8_t>(byte & (0xFFU << (8 - b.bit_count % 8)));
        w.put(byte);
    }
}

template <class M>
    requires std::is_same_v<M, have> || std::is_same_v<M, request> || std::is_same_v<M, cancel> ||
             std::is_same_v<M, reject>
void put_body(writer& w, const M& m) {
    w.put(m.id.value());
}

template <class M>
    requires std::is_same_v<M, subscribe> || std::is_same_v<M, grant>
void put_body(writer& w, const M& m) {
    w.put(m.substreams);
    w.put(m.mask);
}

void put_signed_header(std::byte* out, const chunk& c) noexcept {
    detail::store_be(out, c.id.value());
    detail::store_be(out + 8, c.timestamp);
    out[16] = static_cast<std::byte>(c.flags);
    detail::store_be(out + 17, c.header_ref.value());
    detail::store_be(out + 25, static_cast<std::uint32_t>(c.payload.size()));
}

void put_body(writer& w, const chunk& c) {
    std::array<std::byte, chunk_signed_header_size> h{};
    put_signed_header(h.data(), c);
    w.put_bytes(h);
    w.put_bytes(c.payload);
    w.put_bytes(c.sig);
}

void put_body(writer& w, const peers& p) {
    w.put(static_cast<std::uint8_t>(p.entries.size()));
    for (const auto& e : p.entries) {
        w.put_bytes(e.id.bytes());
        w.put(e.family);
        w.put_bytes(std::as_bytes(std::span(e.address).first(address_size(e.family))));
        w.put(e.port);
    }
}

// ---- decoding ----------------------------------------------------------------------------------

// Every decoder checks the exact size first, so the reads below it cannot fail.
std::error_code exact(const reader& r, std::size_t want) {
    if (r.remaining() < want) return errc::truncated_message;
    if (r.remaining() > want) return errc::trailing_bytes;
    return {};
}

std::optional<message> get_handshake(reader& r, std::error_code& ec) {
    if ((ec = exact(r, handshake_body_size))) return std::nullopt;
    std::array<std::byte, 4> m{};
    handshake h;
    r.get_bytes(m);
    if (m != magic) {
        ec = errc::bad_magic;
        return std::nullopt;
    }
    r.get(h.version);
    if (h.version != protocol_version) {
        ec = errc::unsupported_version;
        return std::nullopt;
    }
    r.get(h.flags);
    r.get_bytes(h.channel.bytes());
    r.get_bytes(h.peer.bytes());
    r.get(h.listen_port);
    return h;
}

std::optional<message> get_bitmap(reader& r, std::error_code& ec) {
    bitmap b;
    std::uint64_t base = 0;
    if (!r.get(base) || !r.get(b.bit_count)) {
        ec = errc::truncated_message;
        return std::nullopt;
    }
    b.base = core::chunk_id{base};
    if (base > max_chunk_id) {
        ec = errc::chunk_id_out_of_range;
        return std::nullopt;
    }
    if (b.bit_count > max_window) {
        ec = errc::bitmap_too_large;
        return std::nullopt;
    }
    const std::size_t n = (std::size_t{b.bit_count} + 7) / 8;
    if ((ec = exact(r, n))) return std::nullopt;
    b.bits.resize(n);
    r.get_bytes(std::as_writable_bytes(std::span(b.bits)));
    if (const auto tail = b.bit_count % 8; tail != 0 && (b.bits.back() & (0xFFU >> tail)) != 0) {
        ec = errc::bitmap_padding;
        return std::nullopt;
    }
    return b;
}

template <class M>
std::optional<message> get_id(reader& r, std::error_code& ec) {
    if ((ec = exact(r, 8))) return std::nullopt;
    std::uint64_t v = 0;
    r.get(v);
    if (v > max_chunk_id) {
        ec = errc::chunk_id_out_of_range;
        return std::nullopt;
    }
    return M{core::chunk_id{v}};
}

bool valid_substreams(std::uint8_t substreams, std::uint32_t mask) noexcept {
    return substreams >= 1 && substreams <= max_substreams &&
           (substreams == max_substreams || (mask >> substreams) == 0);
}

template <class M>
std::optional<message> get_substreams(reader& r, std::error_code& ec) {
    if ((ec = exact(r, 5))) return std::nullopt;
    M m;
    r.get(m.substreams);
    r.get(m.mask);
    if (!valid_substreams(m.substreams, m.mask)) {
        ec = errc::bad_substreams;
        return std::nullopt;
    }
    return m;
}

std::optional<message> get_chunk(reader& r, std::error_code& ec) {
    if (r.remaining() < chunk_body_overhead) {
        ec = errc::truncated_message;
        return std::nullopt;
    }
    chunk c;
    std::uint64_t id = 0;
    std::uint64_t header_ref = 0;
    std::uint32_t len = 0;
    r.get(id);
    r.get(c.timestamp);
    r.get(c.flags);
    r.get(header_ref);
    r.get(len);
    c.id = core::chunk_id{id};
    c.header_ref = core::chunk_id{header_ref};
    if (id > max_chunk_id || (header_ref > max_chunk_id && c.header_ref != chunk::no_header)) {
        ec = errc::chunk_id_out_of_range;
        return std::nullopt;
    }
    if ((c.flags & ~chunk::known_flags) != 0) {
        ec = errc::invalid_chunk_flags;
        return std::nullopt;
    }
    if (len > max_chunk_payload) {
        ec = errc::payload_too_large;
        return std::nullopt;
    }
    if ((ec = exact(r, std::size_t{len} + signature_size))) return std::nullopt;
    const auto payload = r.take(len);
    c.payload.assign(payload.begin(), payload.end());
    r.get_bytes(c.sig);
    return c;
}

std::optional<message> get_peers(reader& r, std::error_code& ec) {
    std::uint8_t count = 0;
    if (!r.get(count)) {
        ec = errc::truncated_message;
        return std::nullopt;
    }
    if (count > max_pex_peers) {
        ec = errc::too_many_peers;
        return std::nullopt;
    }
    peers p;
    p.entries.reserve(count);
    for (std::uint8_t i = 0; i < count; ++i) {
        peer_entry e;
        if (!r.get_bytes(e.id.bytes()) || !r.get(e.family)) {
            ec = errc::truncated_message;
            return std::nullopt;
        }
        if (e.family != peer_entry::ipv4 && e.family != peer_entry::ipv6) {
            ec = errc::bad_address_family;
            return std::nullopt;
        }
        if (!r.get_bytes(std::as_writable_bytes(std::span(e.address).first(address_size(e.family)))) ||
            !r.get(e.port)) {
            ec = errc::truncated_message;
            return std::nullopt;
        }
        if (e.port == 0) {
            ec = errc::invalid_port;
            return std::nullopt;
        }
        p.entries.push_back(e);
    }
    if (r.remaining() != 0) {
        ec = errc::trailing_bytes;
        return std::nullopt;
    }
    return p;
}

}  // namespace

std::size_t frame_size(const message& m) noexcept {
    return frame_header_size + 1 + std::visit([](const auto& v) { return body_size(v); }, m);
}

// Messages the protocol cannot carry are bugs in the caller, not conditions of the network.
void check_encodable(const message& m) {
    if (const auto* b = std::get_if<bitmap>(&m); b && b->bit_count > max_window)
        throw std::invalid_argument("wire::encode: buffer map larger than max_window");
    if (const auto* c = std::get_if<chunk>(&m); c && c->payload.size() > max_chunk_payload)
        throw std::invalid_argument("wire::encode: chunk payload larger than max_chunk_payload");
    if (const auto* p = std::get_if<peers>(&m); p && p->entries.size() > max_pex_peers)
        throw std::invalid_argument("wire::encode: more than max_pex_peers entries");
    if (const auto* s = std::get_if<subscribe>(&m); s && !valid_substreams(s->substreams, s->mask))
        throw std::invalid_argument("wire::encode: SUBSCRIBE substreams out of range");
    if (const auto* g = std::get_if<grant>(&m); g && !valid_substreams(g->substreams, g->mask))
        throw std::invalid_argument("wire::encode: GRANT substreams out of range");
}

void encode(const message& m, std::vector<std::byte>& out) {
    check_encodable(m);
    const std::size_t length = 1 + std::visit([](const auto& v) { return body_size(v); }, m);
    out.reserve(out.size() + frame_header_size + length);
    writer w(out);
    w.put(static_cast<std::uint32_t>(length));
    w.put(static_cast<std::uint8_t>(type_of(m)));
    std::visit([&](const auto& v) { put_body(w, v); }, m);
}

chunk_prefix encode_chunk_prefix(const chunk& c) noexcept {
    chunk_prefix p{};
    detail::store_be(p.data(), static_cast<std::uint32_t>(1 + body_size(c)));
    p[4] = static_cast<std::byte>(message_type::chunk);
    put_signed_header(p.data() + 5, c);
    return p;
}

std::array<std::byte, chunk_signed_header_size> chunk_signed_header(const chunk& c) noexcept {
    std::array<std::byte, chunk_signed_header_size> h{};
    put_signed_header(h.data(), c);
    return h;
}

std::optional<message> decode_body(std::span<const std::byte> body, std::error_code& ec) {
    ec.clear();
    if (body.empty()) {
        ec = errc::empty_frame;
        return std::nullopt;
    }
    reader r(body.subspan(1));
    switch (static_cast<message_type>(body[0])) {
    case message_type::keepalive:
        if ((ec = exact(r, 0))) return std::nullopt;
        return keepalive{};
    case message_type::handshake: return get_handshake(r, ec);
    case message_type::buffer_map: return get_bitmap(r, ec);
    case message_type::have: return get_id<have>(r, ec);
    case message_type::request: return get_id<request>(r, ec);
    case message_type::cancel: return get_id<cancel>(r, ec);
    case message_type::reject: return get_id<reject>(r, ec);
    case message_type::chunk: return get_chunk(r, ec);
    case message_type::peers: return get_peers(r, ec);
    case message_type::subscribe: return get_substreams<subscribe>(r, ec);
    case message_type::grant: return get_substreams<grant>(r, ec);
    }
    ec = errc::unknown_message_type;
    return std::nullopt;
}

}  // namespace pixtream::wire
