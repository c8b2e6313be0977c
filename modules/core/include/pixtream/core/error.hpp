#pragma once
// Typed error codes of the core module. Every module has its own `errc` enum and category;
// expected conditions travel as std::error_code, exceptions are kept for bugs.
#include <string>
#include <system_error>

namespace pixtream::core {

enum class errc {
    out_of_window = 1,   // a chunk id outside the sliding window
    invalid_hex,         // text that is not the hex form of a fixed-size id
    invalid_argument,    // a parameter outside its documented range
};

const std::error_category& core_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), core_category()}; }

}  // namespace pixtream::core

template <>
struct std::is_error_code_enum<pixtream::core::errc> : std::true_type {};
