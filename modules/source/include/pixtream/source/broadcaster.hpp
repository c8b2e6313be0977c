#pragma once
// The source's pipeline: input reader -> chunker -> numbered, timestamped, signed chunks handed to
// `publish` (the node). Ends with an end-of-stream chunk when the input ends for good.
#include "pixtream/source/chunker.hpp"
#include "pixtream/source/input.hpp"
#include "pixtream/wire/signing.hpp"

#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>

namespace pixtream::source {

struct broadcaster_stats {
    std::uint64_t chunks = 0;
    std::uint64_t bytes = 0;
    std::uint64_t header_chunks = 0;
    bool ended = false;
};

class broadcaster {
public:
    using publish_fn = std::function<void(wire::chunk_ptr)>;

    // Chunk ids start at `first_id` and are consecutive.
    broadcaster(const boost::asio::any_io_executor& ex, input_config in, chunker_config cut, wire::keypair key,
                core::chunk_id first_id, publish_fn publish);

    // Reads, cuts, signs and publishes until the input ends (after its end-of-stream chunk) or stop().
    boost::asio::awaitable<void> run();
    void stop();

    const broadcaster_stats& stats() const noexcept { return stats_; }
    const input_reader& input() const noexcept { return *reader_; }
    const chunker& cutter() const noexcept { return chunker_; }

private:
    void emit(std::vector<cut_chunk>& cuts, bool end_of_stream);
    static boost::asio::awaitable<void> tick_loop(broadcaster* self);

    chunker chunker_;
    wire::keypair key_;
    core::chunk_id next_id_;
    std::optional<core::chunk_id> header_id_;
    publish_fn publish_;
    std::unique_ptr<input_reader> reader_;
    boost::asio::steady_timer tick_timer_;
    bool stopping_ = false;
    broadcaster_stats stats_;
};

// Loads the channel key from `path` (128 hex digits: libsodium's 64-byte secret key), or creates a
// new one there (mode 0600) if the file does not exist. nullopt with a reason on any problem.
std::optional<wire::keypair> load_or_create_key(const std::string& path, std::string& error, bool& created);

}  // namespace pixtream::source
