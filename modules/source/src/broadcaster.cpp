#include "pixtream/source/broadcaster.hpp"

#include "pixtream/net/net.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

namespace pixtream::source {

namespace asio = boost::asio;

namespace {

core::wall_micros wall_now() {
    return static_cast<core::wall_micros>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

}  // namespace

broadcaster::broadcaster(const asio::any_io_executor& ex, input_config in, broadcaster_config cfg, wire::keypair key,
                         core::chunk_id first_id, publish_fn publish)
    : cfg_(cfg),
      chunker_(cfg.cut),
      clock_(media_clock_config{
          .kind = cfg.cut.kind, .raw_bytes_per_s = cfg.raw_bytes_per_s, .detect_timeout = cfg.cut.max_duration}),
      key_(std::move(key)),
      next_id_(first_id),
      publish_(std::move(publish)),
      tick_timer_(ex),
      pace_timer_(ex) {
    reader_ = std::make_unique<input_reader>(ex, std::move(in), [this](input_event ev) { return on_input(this, std::move(ev)); });
}

asio::awaitable<void> broadcaster::on_input(broadcaster* self, input_event ev) {
    std::vector<timed_piece> pieces;
    std::vector<cut_chunk> cuts;
    switch (ev.kind) {
    case input_event_kind::data:
        self->clock_.feed(ev.bytes, core::clock::now(), pieces);
        self->note_clock();
        co_await pace(self, std::move(pieces));
        break;
    case input_event_kind::disconnected:
    case input_event_kind::reconnected: {
        // A new connection (or a looped file) starts a fresh container stream: cut what we have, and
        // its clock anchors afresh.
        self->clock_.finish(pieces);
        const bool live = co_await pace(self, std::move(pieces));
        if (!live) co_return;
        self->pacer_.reset();
        self->chunker_.finish(cuts);
        self->emit(cuts, false);
        spdlog::info("source: input {}: {}", to_string(ev.kind), ev.message);
        break;
    }
    case input_event_kind::failed: spdlog::warn("source: input: {}", ev.message); break;
    case input_event_kind::ended: {
        self->clock_.finish(pieces);
        const bool live = co_await pace(self, std::move(pieces));
        if (!live) co_return;
        self->chunker_.finish(cuts);
        self->emit(cuts, true);
        spdlog::info("source: input ended ({})", ev.message.empty() ? "end of input" : ev.message);
        break;
    }
    }
}

asio::awaitable<bool> broadcaster::pace(broadcaster* self, std::vector<timed_piece> pieces) {
    for (auto& piece : pieces) {
        const auto ready = core::clock::now();
        const auto at = self->pacer_.release_at(piece, ready);
        self->stats_.clock_anchors = self->pacer_.anchors();
        if (at > ready) {
            self->pace_timer_.expires_at(at);
            co_await self->pace_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (self->stopping_) co_return false;
            self->stats_.held_s += core::to_seconds(core::clock::now() - ready);
        }
        std::vector<cut_chunk> cuts;
        self->chunker_.feed(piece.bytes, core::clock::now(), cuts);
        self->emit(cuts, false);
        self->tick_timer_.cancel();  // the chunk deadline may have moved
    }
    co_return !self->stopping_;
}

// Says once how the input is paced, as soon as its container is known.
void broadcaster::note_clock() {
    if (clock_noted_ || clock_.kind() == container::automatic) return;
    clock_noted_ = true;
    const auto kind = clock_.kind();
    if (kind == container::raw) {
        if (cfg_.raw_bytes_per_s > 0)
            spdlog::info("source: raw input, published at --rate {} bytes/s", cfg_.raw_bytes_per_s);
        else
            spdlog::warn("source: raw input (no MPEG-TS, Ogg, MP3 or ADTS found) and no --rate: published as fast as "
                         "it arrives");
        return;
    }
    const char* by = kind == container::mpegts ? "its PCR (or PTS until a PCR is seen)"
                     : kind == container::ogg  ? "its granule positions"
                                               : "its frames";
    spdlog::info("source: {} input, published at real time by {}", name_of(kind), by);
    if (cfg_.raw_bytes_per_s > 0)
        spdlog::warn("source: --rate is ignored: it only paces raw input, and this {} input has a clock of its own",
                     name_of(kind));
}

void broadcaster::emit(std::vector<cut_chunk>& cuts, bool end_of_stream) {
    if (end_of_stream) {
        cut_chunk last;
        last.flags = wire::chunk::flag_random_access;
        last.refs_header = header_id_.has_value();
        cuts.push_back(std::move(last));
    }
    for (std::size_t i = 0; i < cuts.size(); ++i) {
        auto& cut = cuts[i];
        wire::chunk c;
        c.id = next_id_;
        ++next_id_;
        c.timestamp = wall_now();
        c.flags = cut.flags;
        if (end_of_stream && i + 1 == cuts.size()) c.flags |= wire::chunk::flag_end_of_stream;
        if (cut.refs_header && header_id_) c.header_ref = *header_id_;
        c.payload = std::move(cut.payload);
        wire::sign_chunk(c, key_.secret);
        if (c.is_header()) {
            header_id_ = c.id;
            ++stats_.header_chunks;
        }
        ++stats_.chunks;
        stats_.bytes += c.payload.size();
        publish_(std::make_shared<const wire::chunk>(std::move(c)));
    }
    if (end_of_stream) stats_.ended = true;
}

asio::awaitable<void> broadcaster::tick_loop(broadcaster* self) {
    while (!self->stopping_ && !self->stats_.ended) {
        const auto deadline = self->chunker_.next_deadline();
        if (deadline) self->tick_timer_.expires_at(*deadline);
        else self->tick_timer_.expires_after(core::seconds(1));
        co_await self->tick_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        std::vector<cut_chunk> cuts;
        self->chunker_.tick(core::clock::now(), cuts);
        self->emit(cuts, false);
    }
}

asio::awaitable<void> broadcaster::run() {
    asio::co_spawn(tick_timer_.get_executor(), tick_loop(this), net::log_errors("source: chunk timer"));
    co_await reader_->run();
    stopping_ = true;
    tick_timer_.cancel();
}

void broadcaster::stop() {
    stopping_ = true;
    reader_->stop();
    tick_timer_.cancel();
    pace_timer_.cancel();
}

std::optional<wire::keypair> load_or_create_key(const std::string& path, std::string& error, bool& created) {
    created = false;
    std::ifstream in(path);
    if (!in) {
        if (errno != ENOENT) {
            error = "cannot read key file '" + path + "': " + std::strerror(errno);
            return std::nullopt;
        }
        auto kp = wire::generate_keypair();
        const auto old_mask = ::umask(077);
        std::ofstream out(path);
        ::umask(old_mask);
        if (!out) {
            error = "cannot create key file '" + path + "': " + std::strerror(errno);
            return std::nullopt;
        }
        static constexpr char digits[] = "0123456789abcdef";
        for (auto b : kp.secret.bytes()) {
            const auto v = std::to_integer<unsigned>(b);
            out << digits[v >> 4U] << digits[v & 0xFU];
        }
        out << '\n';
        if (!out.flush()) {
            error = "cannot write key file '" + path + "'";
            return std::nullopt;
        }
        created = true;
        return kp;
    }
    std::string text;
    in >> text;
    if (text.size() != 2 * wire::secret_key::size) {
        error = "key file '" + path + "' does not hold 128 hex digits";
        return std::nullopt;
    }
    std::array<std::byte, wire::secret_key::size> raw{};
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const auto byte = core::fixed_bytes<1, struct key_byte>::from_hex(std::string_view(text).substr(2 * i, 2));
        if (!byte) {
            error = "key file '" + path + "' does not hold 128 hex digits";
            return std::nullopt;
        }
        raw[i] = byte->bytes()[0];
    }
    auto kp = wire::keypair_from_secret(raw);
    if (!kp) error = "key file '" + path + "' holds an inconsistent key (public half does not match)";
    return kp;
}

}  // namespace pixtream::source
