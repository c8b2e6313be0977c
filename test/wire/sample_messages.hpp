#pragma once
// One of every message type, with every field set to something recognisable, and helpers.
#include "pixtream/wire/messages.hpp"

#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <vector>

namespace pixtream::wire::test {

std::vector<message> sample_messages();
std::vector<std::byte> bytes(std::initializer_list<int> values);
std::vector<std::byte> encode_all(const std::vector<message>& msgs);

}  // namespace pixtream::wire::test

namespace pixtream::wire {
// For Boost.Test diagnostics.
std::ostream& operator<<(std::ostream& os, const message& m);
}  // namespace pixtream::wire

#include <boost/test/tools/detail/print_helper.hpp>

#include <iomanip>

// Bytes print as hex in Boost.Test diagnostics.
template <>
struct boost::test_tools::tt_detail::print_log_value<std::byte> {
    void operator()(std::ostream& os, std::byte b) {
        os << "0x" << std::hex << std::setw(2) << std::setfill('0') << std::to_integer<int>(b) << std::dec;
    }
};
