#include "sample_messages.hpp"

#include "pixtream/wire/codec.hpp"

namespace pixtream::wire::test {

std::vector<std::byte> bytes(std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (int v : values) out.push_back(static_cast<std::byte>(v));
    return out;
}

std::vector<message> sample_messages() {
    handshake h;
    h.flags = handshake::flag_source;
    for (std::size_t i = 0; i < 32; ++i) h.channel.bytes()[i] = static_cast<std::byte>(i + 1);
    for (std::size_t i = 0; i < 20; ++i) h.peer.bytes()[i] = static_cast<std::byte>(0xA0 + i);
    h.listen_port = 60001;

    bitmap b;
    b.base = core::chunk_id{0x0102030405060708ULL};
    b.bit_count = 13;
    b.bits = {0xF0, 0x08};

    chunk c;
    c.id = core::chunk_id{77};
    c.timestamp = 1'700'000'000'000'000ULL;
    c.flags = chunk::flag_random_access;
    c.header_ref = core::chunk_id{3};
    for (int i = 0; i < 300; ++i) c.payload.push_back(static_cast<std::byte>(i * 7));
    for (std::size_t i = 0; i < c.sig.size(); ++i) c.sig[i] = static_cast<std::byte>(0xFF - i);

    peer_entry v4;
    v4.id = h.peer;
    v4.family = peer_entry::ipv4;
    v4.address = {127, 0, 0, 1};
    v4.port = 60002;
    peer_entry v6 = v4;
    v6.family = peer_entry::ipv6;
    v6.address = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    v6.port = 1;

    chunk empty_eos;
    empty_eos.id = core::chunk_id{78};
    empty_eos.flags = chunk::flag_end_of_stream;

    return {keepalive{},
            h,
            b,
            bitmap{core::chunk_id{5}, 0, {}},
            have{core::chunk_id{1}},
            request{core::chunk_id{max_chunk_id}},  // the largest id allowed
            cancel{core::chunk_id{2}},
            reject{core::chunk_id{3}},
            c,
            empty_eos,
            peers{{v4, v6}},
            peers{},
            subscribe{4, 0x05},
            grant{32, 0x80000001U}};
}

std::vector<std::byte> encode_all(const std::vector<message>& msgs) {
    std::vector<std::byte> out;
    for (const auto& m : msgs) encode(m, out);
    return out;
}

}  // namespace pixtream::wire::test

namespace pixtream::wire {
std::ostream& operator<<(std::ostream& os, const message& m) { return os << name_of(type_of(m)); }
}  // namespace pixtream::wire
