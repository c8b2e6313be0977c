#pragma once
// Small Asio helpers shared by the coroutine shells (tracker, peer, source, stream) and the programs.
#include <boost/asio/ip/tcp.hpp>

#include <exception>
#include <functional>
#include <string>

namespace pixtream::net {

// A co_spawn completion handler that logs an exception ("<what> failed: <reason>") instead of
// swallowing it as `detached` would, then calls `then` (if any) with the exception.
std::function<void(std::exception_ptr)> log_errors(std::string what,
                                                   std::function<void(const std::exception&)> then = {});

// The peer's address as text, IPv4-mapped IPv6 addresses shown as IPv4; `fallback` if unknown.
std::string remote_address(const boost::asio::ip::tcp::socket& s, const std::string& fallback = "?");

}  // namespace pixtream::net
