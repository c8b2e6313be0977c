#pragma once
// Parsing of the tracker's request targets. Pure (no I/O): every input is a string, every failure a
// human-readable reason that the server returns as {"error": reason} with HTTP 400.
#include "pixtream/tracker/registry.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace pixtream::tracker {

inline constexpr std::size_t default_numwant = 50;
inline constexpr std::size_t max_name_length = 64;

struct parse_error {
    std::string reason;
};

// Parses the query of `GET /announce?...` (the whole origin-form target, path included).
// Parameters: channel (64 hex), peer_id (40 hex), port (1-65535), event (started|stopped, optional),
// numwant (0-max_numwant, default 50), source (0|1, optional), name (1-64 printable chars, optional).
// Unknown parameters are ignored; a repeated parameter is an error.
std::variant<announce_params, parse_error> parse_announce(std::string_view target, std::size_t max_numwant);

// The query string that parse_announce accepts for `p` (used by the tracker client).
std::string announce_query(const announce_params& p);

}  // namespace pixtream::tracker
