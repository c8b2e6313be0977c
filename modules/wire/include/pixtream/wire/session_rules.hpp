#pragma once
// Order rules of one connection (docs/protocol.md, HANDSHAKE): handshake first and once, same channel,
// not ourselves. The peer module feeds every received message through on_receive().
#include "pixtream/wire/messages.hpp"

#include <optional>
#include <system_error>

namespace pixtream::wire {

class session_rules {
public:
    session_rules(const core::channel_key& channel, const core::peer_id& self) noexcept
        : channel_(channel), self_(self) {}

    // Empty on success; a wire::errc otherwise (the connection must then be closed).
    std::error_code on_receive(const message& m);

    bool handshake_done() const noexcept { return remote_.has_value(); }
    const std::optional<handshake>& remote() const noexcept { return remote_; }
    // Frame limit to use for the next frame: small until the handshake is in.
    std::size_t frame_limit() const noexcept { return remote_ ? max_frame_size : max_handshake_frame; }

private:
    core::channel_key channel_;
    core::peer_id self_;
    std::optional<handshake> remote_;
};

}  // namespace pixtream::wire
