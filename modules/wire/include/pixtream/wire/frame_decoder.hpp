#pragma once
// Incremental frame decoder: bytes go in as they arrive from a socket, whole messages come out.
// Usage: read into prepare(n), commit(bytes_read), then call next() until it returns nullopt.
// A frame's length is checked against the limit as soon as its 4 length bytes are in, so an
// oversized frame never gets buffered. Errors are sticky: after one, next() keeps returning it.
#include "pixtream/wire/messages.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace pixtream::wire {

class frame_decoder {
public:
    explicit frame_decoder(std::size_t max_frame = max_frame_size);

    // Clamped to [min_frame_limit, max_frame_size].
    void set_max_frame(std::size_t max_frame) noexcept;
    std::size_t max_frame() const noexcept { return max_frame_; }

    // Writable space of exactly n bytes at the end of the buffer.
    std::span<std::byte> prepare(std::size_t n);
    // Marks n bytes of the last prepare() as filled (n <= the size prepared).
    void commit(std::size_t n) noexcept;
    // prepare + copy + commit.
    void feed(std::span<const std::byte> bytes);

    // The next whole message; nullopt with `ec` clear when more bytes are needed, nullopt with
    // `ec` set (a wire::errc) when the stream is invalid.
    std::optional<message> next(std::error_code& ec);

    // Bytes received but not yet returned as messages.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    bool failed() const noexcept { return static_cast<bool>(error_); }

private:
    std::vector<std::byte> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t prepared_ = 0;
    std::size_t max_frame_;
    std::error_code error_;
};

}  // namespace pixtream::wire
