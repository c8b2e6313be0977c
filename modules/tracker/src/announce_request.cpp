#include "pixtream/tracker/announce_request.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url.hpp>

#include <charconv>
#include <map>

namespace pixtream::tracker {
namespace {

std::optional<std::uint64_t> to_uint(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty() || s.size() > 20) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) without control characters:
// names end up in JSON and Prometheus text.
bool printable(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F) return false;
            ++i;
            continue;
        }
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0U) == 0xC0U) {
            n = 1;
            cp = c & 0x1FU;
        } else if ((c & 0xF0U) == 0xE0U) {
            n = 2;
            cp = c & 0x0FU;
        } else if ((c & 0xF8U) == 0xF0U) {
            n = 3;
            cp = c & 0x07U;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0U) != 0x80U) return false;
            cp = (cp << 6U) | (d & 0x3FU);
        }
        static constexpr std::uint32_t min_of[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_of[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0)) return false;
        i += n + 1;
    }
    return true;
}

}  // namespace

std::variant<announce_params, parse_error> parse_announce(std::string_view target, std::size_t max_numwant) {
    auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed) return parse_error{"malformed request target"};

    std::map<std::string, std::string, std::less<>> q;
    for (const auto& param : parsed->params()) {
        if (!q.emplace(param.key, param.value).second) {
            return parse_error{printable(param.key) ? "parameter '" + param.key + "' given twice" : "a parameter is given twice"};
        }
    }
    auto get = [&](std::string_view key) -> std::optional<std::string_view> {
        const auto it = q.find(key);
        if (it == q.end()) return std::nullopt;
        return std::string_view(it->second);
    };

    announce_params p;
    const auto channel = get("channel");
    if (!channel) return parse_error{"missing parameter 'channel'"};
    const auto key = core::channel_key::from_hex(*channel);
    if (!key) return parse_error{"'channel' must be 64 hex digits (the source's public key)"};
    p.channel = *key;

    const auto peer = get("peer_id");
    if (!peer) return parse_error{"missing parameter 'peer_id'"};
    const auto id = core::peer_id::from_hex(*peer);
    if (!id) return parse_error{"'peer_id' must be 40 hex digits"};
    p.peer = *id;

    const auto port = get("port");
    if (!port) return parse_error{"missing parameter 'port'"};
    const auto port_value = to_uint(*port);
    if (!port_value || *port_value == 0 || *port_value > 65535) return parse_error{"'port' must be 1 to 65535"};
    p.port = static_cast<std::uint16_t>(*port_value);

    if (const auto ev = get("event")) {
        if (*ev == "started") p.ev = event::started;
        else if (*ev == "stopped") p.ev = event::stopped;
        else if (!ev->empty()) return parse_error{"'event' must be started or stopped"};
    }

    p.numwant = default_numwant;
    if (const auto nw = get("numwant")) {
        const auto v = to_uint(*nw);
        if (!v || *v > max_numwant) return parse_error{"'numwant' must be 0 to " + std::to_string(max_numwant)};
        p.numwant = static_cast<std::size_t>(*v);
    }

    if (const auto src = get("source")) {
        if (*src == "1") p.is_source = true;
        else if (*src != "0") return parse_error{"'source' must be 0 or 1"};
    }

    if (const auto name = get("name")) {
        if (name->empty() || name->size() > max_name_length || !printable(*name))
            return parse_error{"'name' must be 1 to 64 printable characters (UTF-8)"};
        p.name = std::string(*name);
    }
    return p;
}

std::string announce_query(const announce_params& p) {
    std::string q = "channel=" + p.channel.to_hex() + "&peer_id=" + p.peer.to_hex() +
                    "&port=" + std::to_string(p.port) + "&numwant=" + std::to_string(p.numwant);
    if (p.ev == event::started) q += "&event=started";
    if (p.ev == event::stopped) q += "&event=stopped";
    if (p.is_source) q += "&source=1";
    if (p.name) q += "&name=" + boost::urls::encode(*p.name, boost::urls::unreserved_chars);
    return q;
}

}  // namespace pixtream::tracker
