#include "pixtream/wire/error.hpp"

#include <string>

namespace pixtream::wire {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pixtream.wire"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::empty_frame: return "frame of length zero";
        case errc::frame_too_large: return "frame larger than the receiver's limit";
        case errc::unknown_message_type: return "unknown message type";
        case errc::truncated_message: return "message body shorter than its layout";
        case errc::trailing_bytes: return "message body longer than its layout";
        case errc::bad_magic: return "handshake magic is not PXTM";
        case errc::unsupported_version: return "unsupported protocol version";
        case errc::bitmap_too_large: return "buffer map larger than the maximum window";
        case errc::bitmap_padding: return "buffer map padding bits are not zero";
        case errc::invalid_chunk_flags: return "chunk has reserved flag bits set";
        case errc::payload_too_large: return "chunk payload larger than the maximum";
        case errc::too_many_peers: return "peer exchange lists too many peers";
        case errc::bad_address_family: return "peer exchange entry has an unknown address family";
        case errc::invalid_port: return "port zero where a port is required";
        case errc::handshake_expected: return "first message is not a handshake";
        case errc::unexpected_handshake: return "second handshake on one connection";
        case errc::channel_mismatch: return "peer is on another channel";
        case errc::self_connection: return "connected to ourselves";
        case errc::bad_signature: return "chunk signature does not verify";
        case errc::chunk_id_out_of_range: return "chunk id out of range";
        case errc::bad_substreams: return "substream count out of range or mask bits beyond it";
        }
        return "unknown wire error";
    }
};

}  // namespace

const std::error_category& wire_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace pixtream::wire
