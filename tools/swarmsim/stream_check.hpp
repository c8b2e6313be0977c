#pragma once
// The identity check of swarmsim's --processes mode (pure: no I/O).
//
// `fed_stream` keeps the bytes swarmsim fed to the source (the newest `window` of them, at absolute
// offsets from the start of the stream). `output_check` follows one player's output as it arrives and
// checks that it is made of pieces of the fed stream in stream order: the output equals the input over
// each range the peer played, with jumps forward where the peer skipped chunks (each jump is a gap; the
// output server resumes at a chunk boundary). A piece is located by its first `probe` bytes, which is
// unambiguous because the fed bytes are pseudo-random. Memory per player: `probe` bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pixtream::swarmsim {

class fed_stream {
public:
    // Keeps at least the newest `window` bytes (at most twice that).
    explicit fed_stream(std::size_t window);

    void append(std::span<const std::byte> data);
    std::uint64_t begin() const noexcept { return base_; }                  // oldest offset kept
    std::uint64_t end() const noexcept { return base_ + bytes_.size(); }   // bytes fed in all

    // The first offset >= from (and >= begin()) where `pattern` occurs; nullopt if none.
    std::optional<std::uint64_t> find(std::span<const std::byte> pattern, std::uint64_t from) const;
    // How many leading bytes of `data` equal the fed bytes from `offset` on (0 outside the kept window).
    std::size_t common_prefix(std::uint64_t offset, std::span<const std::byte> data) const;

private:
    std::size_t window_;
    std::uint64_t base_ = 0;
    std::vector<std::byte> bytes_;
};

class output_check {
public:
    static constexpr std::size_t probe = 64;

    // The next bytes of the player's output.
    void feed(const fed_stream& fed, std::span<const std::byte> data);

    bool ok() const noexcept { return error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    std::uint64_t bytes() const noexcept { return bytes_; }
    std::uint64_t verified() const noexcept { return verified_; }  // bytes matched to the fed stream
    std::uint64_t gaps() const noexcept { return gaps_; }          // jumps forward after the first piece
    // Offset in the fed stream of the output's first byte, once located.
    std::optional<std::uint64_t> first_offset() const noexcept { return first_; }

private:
    void fail(std::string why);

    std::optional<std::uint64_t> pos_;  // fed offset the next output byte must equal
    std::uint64_t search_from_ = 0;     // where the next piece may start (after a gap)
    std::vector<std::byte> pending_;    // output bytes of a piece not located yet (< probe)
    std::optional<std::uint64_t> first_;
    std::uint64_t bytes_ = 0;
    std::uint64_t verified_ = 0;
    std::uint64_t gaps_ = 0;
    std::string error_;
};

}  // namespace pixtream::swarmsim
