#pragma once
// Routing of one HTTP request to the registry, and the JSON/Prometheus bodies. No sockets here:
// the server feeds it a parsed request line and gets a status and a body back.
#include "pixtream/tracker/registry.hpp"

#include <string>
#include <string_view>

namespace pixtream::tracker {

struct server_counters;

struct http_reply {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
};

// {"error": reason}
http_reply error_reply(unsigned status, std::string_view reason);

// Handles GET /announce, /channels, /stats, /metrics. `client_ip` is the address the request came from.
http_reply handle_request(std::string_view method, std::string_view target, const std::string& client_ip,
                          registry& reg, const server_counters& counters, core::time_point now,
                          core::duration uptime);

}  // namespace pixtream::tracker
