#pragma once
// Real messages, encoded with the codec, for the seeds of the wire fuzz targets.
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixtream::fuzz {

// The identity of the receiving side in the session target.
inline core::channel_key local_channel() {
    core::channel_key k;
    for (std::size_t i = 0; i < k.size; ++i) k.bytes()[i] = static_cast<std::byte>(0x10 + i);
    return k;
}
inline core::peer_id local_peer() {
    core::peer_id p;
    for (std::size_t i = 0; i < p.size; ++i) p.bytes()[i] = static_cast<std::byte>(0xC0 + i);
    return p;
}

inline wire::handshake sample_handshake(bool source = false) {
    wire::handshake h;
    h.flags = source ? wire::handshake::flag_source : 0;
    h.channel = local_channel();
    for (std::size_t i = 0; i < h.peer.size; ++i) h.peer.bytes()[i] = static_cast<std::byte>(0xA0 + i);
    h.listen_port = 60001;
    return h;
}

inline wire::chunk sample_chunk(std::uint64_t id, std::size_t payload, std::uint8_t flags) {
    wire::chunk c;
    c.id = core::chunk_id{id};
    c.timestamp = 1'700'000'000'000'000ULL + id;
    c.flags = flags;
    c.header_ref = id > 0 ? core::chunk_id{0} : wire::chunk::no_header;
    for (std::size_t i = 0; i < payload; ++i) c.payload.push_back(static_cast<std::byte>(i * 7));
    for (std::size_t i = 0; i < c.sig.size(); ++i) c.sig[i] = static_cast<std::byte>(0xFF - i);
    return c;
}

// One of every type after a handshake, in the order a session sends them.
inline std::vector<wire::message> sample_session() {
    wire::bitmap b;
    b.base = core::chunk_id{0x0102030405060708ULL};
    b.bit_count = 13;
    b.bits = {0xF0, 0x08};

    wire::peer_entry v4;
    v4.id = sample_handshake().peer;
    v4.address = {127, 0, 0, 1};
    v4.port = 60002;
    wire::peer_entry v6 = v4;
    v6.family = wire::peer_entry::ipv6;
    v6.address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    v6.port = 1;

    return {sample_handshake(),
            b,
            wire::bitmap{core::chunk_id{5}, 0, {}},
            wire::have{core::chunk_id{1}},
            wire::request{core::chunk_id{wire::max_chunk_id}},  // the largest id the wire carries
            wire::cancel{core::chunk_id{2}},
            wire::reject{core::chunk_id{3}},
            sample_chunk(77, 300, wire::chunk::flag_random_access),
            sample_chunk(0, 40, wire::chunk::flag_header | wire::chunk::flag_random_access),
            sample_chunk(78, 0, wire::chunk::flag_end_of_stream),
            wire::peers{{v4, v6}},
            wire::peers{},
            wire::subscribe{4, 0x0f},
            wire::grant{4, 0x02},
            wire::keepalive{}};
}

inline std::vector<std::byte> encode_all(const std::vector<wire::message>& msgs) {
    std::vector<std::byte> out;
    for (const auto& m : msgs) wire::encode(m, out);
    return out;
}

}  // namespace pixtream::fuzz
