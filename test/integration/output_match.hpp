#pragma once
// The output-equals-input check of the integration tests (pure, no Boost.Test): a player's output
// taken apart into pieces of the source input, so that a byte missing anywhere is seen.
//
// A well-formed output is
//   [header piece]  input[start, e1)  input[s2, e2)  ...  input[sk, end)      start < e1 <= s2 < ...
// - the header piece is a container header replayed for a player that joined late (the output server
//   sends the header chunk before the first random-access chunk): a piece of the input, at most
//   `max_header` bytes, from earlier in the input than `start`, that is MPEG-TS PSI/SI packets up to
//   a PAT or Ogg pages from one opening a logical stream (BOS). (A player that got the input from its
//   first byte and then lost data right after the header chunk looks the same: callers that know
//   where a player started say so.)
// - then pieces of the input in increasing order; the input between two pieces is a gap (chunks a
//   peer skipped); a piece out of order or repeated, or bytes that are not in the input, make the
//   output malformed (`problem`).
// `exact()` is what a peer that missed nothing delivers: the input from `start` to its end with no
// gap. A caller that allows skips reads `gaps` and decides.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pixtream::test {

struct input_range {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t size() const noexcept { return end - begin; }
    bool operator==(const input_range&) const = default;
};

struct output_match {
    std::size_t input_size = 0;
    std::string problem;                // not empty: not pieces of the input in order (the first offence)
    std::optional<input_range> header;  // the replayed header piece, if any
    std::size_t start = 0;              // input offset where the played range begins
    std::size_t end = 0;                // input offset where the output ends
    std::vector<input_range> gaps;      // input missing inside [start, end)

    bool in_order() const noexcept { return problem.empty(); }
    bool reaches_end() const noexcept { return in_order() && end == input_size; }
    // [header] + input[start, input_size) with no byte missing.
    bool exact() const noexcept { return reaches_end() && gaps.empty(); }
    std::size_t missing() const noexcept {
        std::size_t n = 0;
        for (const auto& g : gaps) n += g.size();
        return n;
    }

    // One line for a failed check: what the output is made of.
    std::string describe() const {
        std::string s;
        if (!in_order()) return "malformed output: " + problem;
        if (header) s += "header [" + std::to_string(header->begin) + ", " + std::to_string(header->end) + ") + ";
        s += "input [" + std::to_string(start) + ", " + std::to_string(end) + ") of " + std::to_string(input_size);
        if (gaps.empty()) return s + ", no gap";
        s += ", " + std::to_string(gaps.size()) + " gap(s), " + std::to_string(missing()) + " bytes missing:";
        for (std::size_t i = 0; i < gaps.size() && i < 20; ++i) {
            s += " [" + std::to_string(gaps[i].begin) + ", " + std::to_string(gaps[i].end) + ")";
        }
        if (gaps.size() > 20) s += " ...";
        return s;
    }
};

namespace detail {

inline std::size_t common_prefix(std::string_view a, std::string_view b) noexcept {
    const auto n = std::min(a.size(), b.size());
    return static_cast<std::size_t>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first -
                                    a.begin());
}

inline unsigned byte_at(std::string_view s, std::size_t i) noexcept { return static_cast<unsigned char>(s[i]); }

inline unsigned ts_pid(std::string_view packet) noexcept {
    return ((byte_at(packet, 1) & 0x1FU) << 8U) | byte_at(packet, 2);
}

// Is input[r) a container header chunk: MPEG-TS packets of PSI/SI (PIDs below 0x20) or null packets
// up to a PAT (PID 0, starting a section), as the source cuts it (the PMTs follow), or Ogg pages
// starting with one that begins a logical stream (BOS)?
inline bool header_piece(std::string_view in, input_range r) noexcept {
    const auto piece = in.substr(r.begin, r.size());
    for (std::size_t at = 0; at + 188 <= piece.size() && byte_at(piece, at) == 0x47; at += 188) {
        const auto pkt = piece.substr(at, 188);
        const auto pid = ts_pid(pkt);
        if (pid == 0 && (byte_at(pkt, 1) & 0x40U) != 0) return true;
        if (pid >= 0x20 && pid != 0x1FFF) break;
    }
    return piece.size() >= 27 && piece.substr(0, 4) == "OggS" && (byte_at(piece, 5) & 0x02U) != 0;
}

}  // namespace detail

// Takes `out` apart as described above. Each piece is found from a short anchor (its first 64 bytes)
// at or after the end of the previous piece, at the occurrence that matches the longest run.
// Bytes that match the input on both sides of a jump go to the piece after it (at a chunk boundary
// the new chunk's first bytes often equal the skipped one's), so gaps are placed where the data jumps.
inline output_match match_output(std::string_view out, std::string_view in, std::size_t max_header = 64 * 1024) {
    constexpr std::size_t anchor = 64;
    output_match m;
    m.input_size = in.size();
    if (out.empty()) {
        m.problem = "the output is empty";
        return m;
    }
    std::vector<input_range> pieces;
    std::size_t p = 0;  // output offset
    std::size_t q = 0;  // the next piece starts at or after this input offset
    while (p < out.size()) {
        const auto rest = out.substr(p);
        const auto key = rest.substr(0, anchor);
        std::size_t best_at = std::string_view::npos;
        std::size_t best_len = 0;
        for (auto at = in.find(key, q); at != std::string_view::npos; at = in.find(key, at + 1)) {
            const auto len = detail::common_prefix(rest, in.substr(at));
            if (len > best_len) {
                best_len = len;
                best_at = at;
            }
            if (len == rest.size()) break;
        }
        if (best_at == std::string_view::npos) {
            const auto earlier = in.find(key);
            m.problem = "output bytes at offset " + std::to_string(p) +
                        (earlier != std::string_view::npos
                             ? " repeat input offset " + std::to_string(earlier) + ", before the end of the previous piece (" +
                                   std::to_string(q) + "): a duplicated or reordered piece"
                             : " are not in the input");
            return m;
        }
        // Bytes at the end of the previous piece that match the input right before this one too (a
        // chunk's first bytes are often those of the chunk it replaces) belong to this one: the
        // boundary goes back to where the data really jumps.
        while (!pieces.empty() && pieces.back().size() > 1 && in[best_at - 1] == out[p - 1]) {
            --best_at;
            --p;
            ++best_len;
            --pieces.back().end;
        }
        pieces.push_back({best_at, best_at + best_len});
        p += best_len;
        q = best_at + best_len;
    }
    std::size_t first = 0;
    if (pieces.size() >= 2 && pieces[0].size() <= max_header && detail::header_piece(in, pieces[0])) {
        m.header = pieces[0];
        first = 1;
    }
    m.start = pieces[first].begin;
    m.end = pieces.back().end;
    for (std::size_t i = first + 1; i < pieces.size(); ++i) {
        if (pieces[i].begin > pieces[i - 1].end) m.gaps.push_back({pieces[i - 1].end, pieces[i].begin});
    }
    return m;
}

}  // namespace pixtream::test
