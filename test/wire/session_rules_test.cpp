#include "pixtream/wire/error.hpp"
#include "pixtream/wire/session_rules.hpp"

#include <boost/test/unit_test.hpp>

using namespace pixtream;
using namespace pixtream::wire;

namespace {

handshake make_handshake(int channel_byte, int peer_byte) {
    handshake h;
    h.channel.bytes()[0] = static_cast<std::byte>(channel_byte);
    h.peer.bytes()[0] = static_cast<std::byte>(peer_byte);
    h.listen_port = 1234;
    return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_rules_suite)

BOOST_AUTO_TEST_CASE(handshake_first_then_anything_but_handshake) {
    const auto mine = make_handshake(7, 1);
    session_rules rules(mine.channel, mine.peer);
    BOOST_TEST(rules.frame_limit() == max_handshake_frame);
    BOOST_TEST(!rules.on_receive(make_handshake(7, 2)));
    BOOST_TEST(rules.handshake_done());
    BOOST_TEST(std::to_integer<int>(rules.remote()->peer.bytes()[0]) == 2);
    BOOST_TEST(rules.frame_limit() == max_frame_size);
    BOOST_TEST(!rules.on_receive(have{core::chunk_id{1}}));
    BOOST_TEST(!rules.on_receive(keepalive{}));
    BOOST_TEST((rules.on_receive(make_handshake(7, 2)) == errc::unexpected_handshake));
}

BOOST_AUTO_TEST_CASE(violations) {
    const auto mine = make_handshake(7, 1);
    const std::pair<message, errc> cases[] = {
        {have{core::chunk_id{1}}, errc::handshake_expected},
        {keepalive{}, errc::handshake_expected},
        {make_handshake(8, 2), errc::channel_mismatch},
        {make_handshake(7, 1), errc::self_connection},
    };
    for (const auto& [first, want] : cases) {
        BOOST_TEST_CONTEXT(make_error_code(want).message()) {
            session_rules rules(mine.channel, mine.peer);
            BOOST_TEST((rules.on_receive(first) == want));
            BOOST_TEST(!rules.handshake_done());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
