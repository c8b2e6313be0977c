#pragma once
// The source's pipeline: input reader -> media clock and pacer -> chunker -> numbered, timestamped,
// signed chunks handed to `publish` (the node). The input is published at real time by the media's own
// clock (media_clock.hpp): an input that arrives faster (a file, a dump over TCP) is held back, and
// the reader reads no more until it is due, so the sender is slowed down by TCP (or the pipe). Ends
// with an end-of-stream chunk when the input ends for good.
#include "pixtream/source/chunker.hpp"
#include "pixtream/source/input.hpp"
#include "pixtream/source/media_clock.hpp"
#include "pixtream/wire/signing.hpp"

#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>

namespace pixtream::source {

struct broadcaster_stats {
    std::uint64_t chunks = 0;
    std::uint64_t bytes = 0;
    std::uint64_t header_chunks = 0;
    std::uint64_t clock_anchors = 0;  // times the pacing was anchored afresh (start, discontinuity, stall)
    double held_s = 0;                // seconds the input was held back to real time
    bool ended = false;
};

struct broadcaster_config {
    chunker_config cut;
    // Raw input (no container clock): its byte rate, for pacing (0: published as it arrives). Ignored,
    // with a warning, when the input has a clock of its own.
    double raw_bytes_per_s = 0;
};

class broadcaster {
public:
    using publish_fn = std::function<void(wire::chunk_ptr)>;

    // Chunk ids start at `first_id` and are consecutive.
    broadcaster(const boost::asio::any_io_executor& ex, input_config in, broadcaster_config cfg, wire::keypair key,
                core::chunk_id first_id, publish_fn publish);

    // Binds a pushed input's socket (input_reader::bind): "" or why it cannot.
    std::string bind_input() { return reader_->bind(); }
    // Reads, cuts, signs and publishes until the input ends (after its end-of-stream chunk) or stop().
    boost::asio::awaitable<void> run();
    void stop();

    const broadcaster_stats& stats() const noexcept { return stats_; }
    const input_reader& input() const noexcept { return *reader_; }
    const chunker& cutter() const noexcept { return chunker_; }
    const media_clock& clock() const noexcept { return clock_; }

private:
    void emit(std::vector<cut_chunk>& cuts, bool end_of_stream);
    static boost::asio::awaitable<void> on_input(broadcaster* self, input_event ev);
    // Publishes the pieces at their time (false when stopped meanwhile).
    static boost::asio::awaitable<bool> pace(broadcaster* self, std::vector<timed_piece> pieces);
    static boost::asio::awaitable<void> tick_loop(broadcaster* self);
    void note_clock();

    broadcaster_config cfg_;
    chunker chunker_;
    media_clock clock_;
    media_pacer pacer_;
    bool clock_noted_ = false;
    wire::keypair key_;
    core::chunk_id next_id_;
    std::optional<core::chunk_id> header_id_;
    publish_fn publish_;
    std::unique_ptr<input_reader> reader_;
    boost::asio::steady_timer tick_timer_;
    boost::asio::steady_timer pace_timer_;
    bool stopping_ = false;
    broadcaster_stats stats_;
};

// Loads the channel key from `path` (128 hex digits: libsodium's 64-byte secret key), or creates a
// new one there (mode 0600) if the file does not exist. nullopt with a reason on any problem.
std::optional<wire::keypair> load_or_create_key(const std::string& path, std::string& error, bool& created);

}  // namespace pixtream::source
