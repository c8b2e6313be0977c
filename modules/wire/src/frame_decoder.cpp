#include "pixtream/wire/frame_decoder.hpp"

#include "bytes.hpp"
#include "pixtream/wire/codec.hpp"
#include "pixtream/wire/error.hpp"

#include <algorithm>
#include <cstring>

namespace pixtream::wire {

frame_decoder::frame_decoder(std::size_t max_frame) { set_max_frame(max_frame); }

void frame_decoder::set_max_frame(std::size_t max_frame) noexcept {
    max_frame_ = std::clamp(max_frame, min_frame_limit, max_frame_size);
}

std::span<std::byte> frame_decoder::prepare(std::size_t n) {
    if (buf_.size() - end_ < n) {
        // Move the unread bytes to the front before growing: the buffer then holds at most one
        // partial frame plus one read.
        if (begin_ > 0) {
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        if (buf_.size() - end_ < n) buf_.resize(end_ + n);
    }
    prepared_ = n;
    return {buf_.data() + end_, n};
}

void frame_decoder::commit(std::size_t n) noexcept {
    end_ += std::min(n, prepared_);
    prepared_ = 0;
}

void frame_decoder::feed(std::span<const std::byte> bytes) {
    auto out = prepare(bytes.size());
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    commit(bytes.size());
}

std::optional<message> frame_decoder::next(std::error_code& ec) {
    ec = error_;
    if (error_) return std::nullopt;
    if (buffered() < frame_header_size) return std::nullopt;
    const auto length = detail::load_be<std::uint32_t>(buf_.data() + begin_);
    if (length == 0) {
        ec = error_ = errc::empty_frame;
        return std::nullopt;
    }
    if (length > max_frame_) {
        ec = error_ = errc::frame_too_large;
        return std::nullopt;
    }
    if (buffered() < frame_header_size + length) return std::nullopt;
    auto msg = decode_body({buf_.data() + begin_ + frame_header_size, length}, ec);
    if (ec) {
        error_ = ec;
        return std::nullopt;
    }
    begin_ += frame_header_size + length;
    if (begin_ == end_) begin_ = end_ = 0;
    return msg;
}

}  // namespace pixtream::wire
