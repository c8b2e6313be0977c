#include "stream_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

namespace pixtream::swarmsim {

fed_stream::fed_stream(std::size_t window) : window_(std::max<std::size_t>(window, 1)) {}

void fed_stream::append(std::span<const std::byte> data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    if (bytes_.size() > 2 * window_) {
        // Amortised: each byte is moved at most once per `window` bytes appended.
        const std::size_t drop = bytes_.size() - window_;
        bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(drop));
        base_ += drop;
    }
}

std::optional<std::uint64_t> fed_stream::find(std::span<const std::byte> pattern, std::uint64_t from) const {
    from = std::max(from, base_);
    if (pattern.empty() || from >= end()) return std::nullopt;
    const auto first = bytes_.begin() + static_cast<std::ptrdiff_t>(from - base_);
    const auto it = std::search(first, bytes_.end(), std::boyer_moore_horspool_searcher(pattern.begin(), pattern.end()));
    if (it == bytes_.end()) return std::nullopt;
    return base_ + static_cast<std::uint64_t>(it - bytes_.begin());
}

std::size_t fed_stream::common_prefix(std::uint64_t offset, std::span<const std::byte> data) const {
    if (offset < base_ || offset >= end()) return 0;
    const auto at = bytes_.begin() + static_cast<std::ptrdiff_t>(offset - base_);
    const auto n = std::min<std::size_t>(data.size(), static_cast<std::size_t>(bytes_.end() - at));
    const auto mm = std::mismatch(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), at);
    return static_cast<std::size_t>(mm.first - data.begin());
}

void output_check::fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
}

void output_check::feed(const fed_stream& fed, std::span<const std::byte> data) {
    bytes_ += data.size();
    while (ok() && !data.empty()) {
        if (!pos_) {
            // Collect `probe` bytes, then locate them.
            const std::size_t take = std::min(probe - pending_.size(), data.size());
            pending_.insert(pending_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
            data = data.subspan(take);
            if (pending_.size() < probe) return;
            const auto at = fed.find(pending_, search_from_);
            if (!at) {
                std::string head;
                for (std::size_t i = 0; i < 16; ++i) head += fmt::format("{:02x}", std::to_integer<unsigned>(pending_[i]));
                fail(fmt::format("{} bytes at output offset {} ({}...) are nowhere in the source input{}", probe,
                                 bytes_ - data.size() - probe, head,
                                 search_from_ < fed.begin() ? " (or fell out of the check window)"
                                 : first_                   ? " after the previous piece"
                                                            : ""));
                return;
            }
            if (first_) ++gaps_;
            else first_ = *at;
            pos_ = *at + probe;
            verified_ += probe;
            pending_.clear();
            continue;
        }
        if (*pos_ < fed.begin()) {
            fail(fmt::format("the output fell {} bytes behind the check window", fed.begin() - *pos_));
            return;
        }
        const std::size_t n = fed.common_prefix(*pos_, data);
        *pos_ += n;
        verified_ += n;
        data = data.subspan(n);
        if (data.empty()) return;
        if (*pos_ >= fed.end()) {
            fail(fmt::format("the output holds bytes beyond the {} bytes fed", fed.end()));
            return;
        }
        // A jump forward (the peer skipped chunks): the next piece starts at or after here.
        search_from_ = *pos_;
        pos_.reset();
    }
}

}  // namespace pixtream::swarmsim
