#include "pixtream/net/net.hpp"

#include <spdlog/spdlog.h>

namespace pixtream::net {

std::function<void(std::exception_ptr)> log_errors(std::string what, std::function<void(const std::exception&)> then) {
    return [what = std::move(what), then = std::move(then)](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("{} failed: {}", what, ex.what());
            if (then) then(ex);
        }
    };
}

std::string remote_address(const boost::asio::ip::tcp::socket& s, const std::string& fallback) {
    boost::system::error_code ec;
    auto addr = s.remote_endpoint(ec).address();
    if (ec) return fallback;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
        addr = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
    }
    return addr.to_string();
}

}  // namespace pixtream::net
