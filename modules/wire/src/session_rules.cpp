#include "pixtream/wire/session_rules.hpp"

#include "pixtream/wire/error.hpp"

namespace pixtream::wire {

std::error_code session_rules::on_receive(const message& m) {
    const auto* h = std::get_if<handshake>(&m);
    if (!remote_) {
        if (!h) return errc::handshake_expected;
        if (h->channel != channel_) return errc::channel_mismatch;
        if (h->peer == self_) return errc::self_connection;
        remote_ = *h;
        return {};
    }
    if (h) return errc::unexpected_handshake;
    return {};
}

}  // namespace pixtream::wire
