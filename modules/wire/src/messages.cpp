#include "pixtream/wire/messages.hpp"

namespace pixtream::wire {

bool bitmap::test(core::chunk_id id) const noexcept {
    // (Unsigned: an id 2^63 or more ahead would give a negative signed distance.)
    if (id < base || id.value() - base.value() >= bit_count) return false;
    const auto i = static_cast<std::size_t>(id.value() - base.value());
    return (bits[i / 8] >> (7 - i % 8)) & 1U;
}

bitmap bitmap::from(const core::buffer_map& map) {
    bitmap b;
    b.base = map.base();
    b.bit_count = static_cast<std::uint16_t>(map.capacity());
    b.bits.assign((map.capacity() + 7) / 8, 0);
    map.for_each_set([&](core::chunk_id id) {
        const auto i = static_cast<std::size_t>(distance(map.base(), id));
        b.bits[i / 8] = static_cast<std::uint8_t>(b.bits[i / 8] | (0x80U >> (i % 8)));
    });
    return b;
}

void bitmap::apply_to(core::buffer_map& map) const {
    for (std::size_t byte = 0; byte < bits.size(); ++byte) {
        if (bits[byte] == 0) continue;
        for (std::size_t bit = 0; bit < 8; ++bit) {
            const auto i = byte * 8 + bit;
            if (i < bit_count && ((bits[byte] >> (7 - bit)) & 1U)) map.set(base + i);
        }
    }
}

message_type type_of(const message& m) noexcept {
    return static_cast<message_type>(m.index());
}

const char* name_of(message_type t) noexcept {
    switch (t) {
    case message_type::keepalive: return "KEEPALIVE";
    case message_type::handshake: return "HANDSHAKE";
    case message_type::buffer_map: return "BUFFER_MAP";
    case message_type::have: return "HAVE";
    case message_type::request: return "REQUEST";
    case message_type::cancel: return "CANCEL";
    case message_type::reject: return "REJECT";
    case message_type::chunk: return "CHUNK";
    case message_type::peers: return "PEERS";
    case message_type::subscribe: return "SUBSCRIBE";
    case message_type::grant: return "GRANT";
    }
    return "UNKNOWN";
}

// The variant's alternatives are in type-code order; type_of relies on it.
static_assert(std::variant_size_v<message> == 11);
static_assert(std::is_same_v<std::variant_alternative_t<7, message>, chunk>);
static_assert(std::is_same_v<std::variant_alternative_t<10, message>, grant>);

}  // namespace pixtream::wire
