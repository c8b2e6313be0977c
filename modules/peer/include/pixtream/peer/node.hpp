#pragma once
// A node of the swarm: the source peer or a viewing peer. One coroutine per concern on one
// executor (no locks): the accept loop, the connector, per connection a session (handshake, reader,
// writer with upload pacing, keepalive), and the pump that drives the scheduler and the playout.
#include "pixtream/core/rate_meter.hpp"
#include "pixtream/peer/chunk_store.hpp"
#include "pixtream/peer/playout.hpp"
#include "pixtream/swarm/push_tree.hpp"
#include "pixtream/swarm/seed_picker.hpp"
#include "pixtream/swarm/scheduler.hpp"
#include "pixtream/swarm/uplink.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>

namespace pixtream::peer {

struct node_config {
    core::channel_key channel;
    core::peer_id self;
    bool is_source = false;
    boost::asio::ip::tcp::endpoint listen;      // port 0: any free port
    std::uint16_t advertised_port = 0;          // port told to others (0: the listening port)
    std::size_t max_peers = 16;                 // connections at most, both directions
    std::size_t target_peers = 8;               // connections the connector aims for
    // Bytes per second over all connections, an upper cap; 0: none. The node measures what its uplink
    // drains either way (swarm::uplink_estimator) and paces and refuses requests from that.
    double upload_limit = 0;
    // REQUESTs are REJECTed while the data waiting to go out (queued chunks, kernel unsent bytes, pacing
    // debt) would take longer than this to drain at the measured uplink rate, so that requesters turn
    // to another holder at once instead of waiting.
    core::duration max_upload_backlog = core::milliseconds(500);
    // Unsent bytes a socket's kernel queue may hold (TCP_NOTSENT_LOWAT): the rest waits in the node,
    // where fresh chunks go first and a CANCEL or REJECT still helps.
    std::size_t kernel_unsent_bytes = 16 * 1024;
    // Chunk frames written at once over all connections. Few, so that one neighbour gets a whole chunk
    // (and can relay it) before the next one starts, rather than all of them getting theirs late.
    std::size_t upload_slots = 1;
    core::duration buffer = core::seconds(3);   // playout lag held behind the live edge
    std::size_t store_capacity = 256;           // chunks kept (window), see chunk_store
    std::size_t push_fanout = 1;                // source: each fresh chunk is pushed to this many peers
    // Source: pick those peers by how fast each spread what it was pushed (swarm::seed_picker); false:
    // in turn.
    bool pick_seeds = true;
    // Source: while a chunk is younger than source_fresh, it sends at most source_fresh_copies copies
    // (pushes included) and rejects further requests, so that peers fetch it from each other. Older
    // chunks are served to anyone who asks (repair).
    core::duration source_fresh = core::milliseconds(1500);
    std::size_t source_fresh_copies = 1;
    // Source: uploads at most this many times the stream rate (pushes first, then repairs within what
    // is left): the peers carry the rest. 0: as much as the uplink drains.
    double source_budget = 1.3;
    // Viewer: a chunk the source pushed is pushed straight on to this many neighbours that lack it
    // (only in a substream the node pushes to no child: see push_substreams).
    std::size_t relay_pushes = 1;
    // Substream push trees (swarm::push_tree): the stream is split into this many substreams, each
    // viewer subscribes to one neighbour per substream, which pushes it those chunks as soon as it
    // holds them; pulling repairs the rest. 0: no push trees (only the pushes above).
    unsigned push_substreams = 0;
    // Viewer: the share of the measured uplink given to children's subscriptions.
    double push_share = 0.8;
    // Viewer: children of one substream at most (each hop sends its copies one after another).
    std::size_t push_children = 3;
    // A HAVE for a chunk whose substream is pushed to us waits this long before it is requested elsewhere.
    core::duration push_patience = core::milliseconds(300);
    swarm::scheduler_config scheduler{};
    std::uint64_t seed = 0;
    core::duration connect_timeout = core::seconds(3);
    core::duration ban_time = core::seconds(600);
};

struct neighbour_info {
    core::peer_id id;
    std::string ip;
    std::uint16_t port = 0;
    bool outgoing = false;
    bool is_source = false;
    std::size_t in_flight = 0;
};

struct node_stats {
    std::size_t neighbours = 0;
    std::uint64_t wire_bytes_in = 0;    // everything received, frames and payloads
    std::uint64_t wire_bytes_out = 0;
    std::uint64_t payload_bytes_in = 0;   // chunk payloads only
    std::uint64_t payload_bytes_out = 0;
    std::uint64_t chunks_in = 0;
    std::uint64_t chunks_out = 0;
    std::uint64_t chunks_published = 0;   // source: chunks produced
    std::uint64_t bytes_published = 0;    // source: payload bytes produced
    std::uint64_t duplicate_chunks = 0;
    std::uint64_t bad_chunks = 0;         // failed verification: sender banned
    std::uint64_t protocol_errors = 0;
    std::uint64_t bans = 0;               // neighbours banned (bad chunk, protocol violation)
    std::uint64_t rejects_sent = 0;
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_made = 0;
    std::uint64_t connect_failures = 0;
    double upload_rate = 0;               // bytes per second, recent
    double uplink_estimate = 0;           // bytes per second the uplink was measured to drain (0: not yet)
    double uplink_pacing = 0;             // bytes per second the uploads are paced at (0: not paced)
    std::uint64_t uplink_busy_intervals = 0;
    std::uint64_t kernel_unsent = 0;      // bytes unsent in the sockets' kernel queues now
    std::uint64_t upload_queued = 0;      // bytes of chunks waiting in the node to be sent
    double download_rate = 0;
    playout_stats playout;
    swarm::scheduler_stats scheduler;
    swarm::push_tree_stats tree;
    std::size_t tree_capacity = 0;   // substream subscriptions this node grants at most
    std::size_t tree_children = 0;   // ... granted now
    std::size_t tree_parents = 0;    // substreams pushed to us now
    swarm::seed_picker_stats seeds;  // source: the choice of push targets
};

// Callbacks to the player side (the stream output), on the node's executor.
struct playback_handler {
    std::function<void(const wire::chunk_ptr&)> play;  // next chunk, in order
    std::function<void()> gap;                         // chunks were skipped before the next play
    std::function<void(const wire::chunk_ptr&)> end;   // end of stream reached (after its play)
};

class session;

class node : public std::enable_shared_from_this<node> {
public:
    // Binds and listens at once: a port in use throws boost::system::system_error here.
    node(const boost::asio::any_io_executor& ex, node_config cfg);
    ~node();
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    std::uint16_t advertised_port() const;

    // Accepts, connects, trades and plays until stop().
    boost::asio::awaitable<void> run();
    void stop();

    // A peer to connect to (from the tracker or peer exchange).
    void add_candidate(const std::string& ip, std::uint16_t port);
    // Source: a fresh signed chunk, stored, announced and pushed.
    void publish(wire::chunk_ptr c);
    void on_playback(playback_handler h) { playback_ = std::move(h); }

    node_stats stats() const;
    std::vector<neighbour_info> neighbours() const;
    const chunk_store& store() const noexcept { return store_; }
    const playout& player() const noexcept { return playout_; }
    const node_config& config() const noexcept { return cfg_; }
    bool banned(const core::peer_id& id, const std::string& ip, std::uint16_t port) const;

private:
    friend class session;
    static constexpr std::size_t max_bans = 4096;  // banned ids (and endpoints) remembered at most
    struct candidate {
        core::time_point next_try{};
        int failures = 0;
    };

    static boost::asio::awaitable<void> accept_loop(std::shared_ptr<node> self);
    static boost::asio::awaitable<void> connect_loop(std::shared_ptr<node> self);
    static boost::asio::awaitable<void> connect_one(std::shared_ptr<node> self, std::string ip, std::uint16_t port);
    static boost::asio::awaitable<void> pump(std::shared_ptr<node> self);
    static boost::asio::awaitable<void> uplink_loop(std::shared_ptr<node> self);
    void sample_uplink(core::time_point now);
    std::size_t kernel_unsent_total() const;
    std::size_t kernel_in_flight_total() const;  // sent and unacknowledged, over all sockets
    void start_session(boost::asio::ip::tcp::socket socket, bool outgoing, std::string key);

    // From sessions.
    bool admit(const std::shared_ptr<session>& s);  // handshake done: keep it?
    bool may_serve(core::chunk_id id);               // a REQUEST: serve it (and count the copy)?
    bool within_budget(core::chunk_id id);           // source: the upload budget allows serving it (takes it)
    bool upload_saturated();                         // the upload backlog is over max_upload_backlog
    // Over the backlog bound: REJECTs queued uploads staler than `id` until under it; false if that
    // was not enough (nothing staler queued).
    bool make_room_for(core::chunk_id id);
    // Upload slots (node_config::upload_slots): a session takes one before writing a chunk frame,
    // pushes first, then the session with the freshest chunk to send; a session that could not is
    // woken when it is its turn.
    bool take_upload_slot(session* s);
    void release_upload_slot() noexcept;
    void forget_slot_waiter(session* s) noexcept;
    session* next_slot_holder() const noexcept;  // the waiter whose turn it is
    void on_closed(const std::shared_ptr<session>& s);
    void on_message(const std::shared_ptr<session>& s, wire::message& m);
    void on_chunk(const std::shared_ptr<session>& s, wire::chunk&& c);
    void ban(const std::shared_ptr<session>& s, const std::string& why);
    void wake() noexcept;

    // Stores a verified chunk and tells the neighbours; false if it was not new.
    bool accept_chunk(const wire::chunk_ptr& c, const session* from);
    void announce(core::chunk_id id, const session* from);  // HAVE to every neighbour not known to hold it
    void relay_push(const wire::chunk_ptr& c, const session* from);  // a chunk the source pushed: push it on
    void announce_aged(core::time_point now);               // source: chunks past source_fresh
    core::buffer_map advertised_map() const;                // what a new neighbour's BUFFER_MAP shows
    void join(core::time_point now);
    void rebuild_scheduler(core::chunk_id playhead);
    void play(core::time_point now);
    void fetch_missing_headers(core::time_point now);
    session* find(const core::peer_id& id) const;
    std::optional<core::chunk_id> live_edge() const;  // the newest chunk any neighbour holds
    double stream_rate() const;                       // bytes per second of the stream (0: unknown)
    void update_tree(core::time_point now);            // capacity, parents, grants: SUBSCRIBE/GRANT out
    std::size_t push_to_children(const wire::chunk_ptr& c);  // returns the copies queued
    void on_tree_have(session& s, core::chunk_id id, core::time_point now);

    node_config cfg_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer pump_timer_;
    boost::asio::steady_timer connect_timer_;
    bool stopping_ = false;
    bool woken_ = false;

    chunk_store store_;
    playout playout_;
    std::unique_ptr<swarm::scheduler> scheduler_;
    std::unique_ptr<swarm::push_tree> tree_;  // null: no push trees
    std::unique_ptr<swarm::seed_picker> seeds_;  // source with pick_seeds; null otherwise
    std::vector<swarm::tree_action> tree_actions_;
    swarm::upload_policy uplink_;
    core::token_bucket upload_bucket_;     // paces at uplink_.pacing_rate() (unlimited while that is 0)
    boost::asio::steady_timer uplink_timer_;
    core::token_bucket budget_bucket_;     // source: source_budget x the stream rate (unlimited until measured)
    std::uint64_t delivered_total_ = 0;    // bytes acknowledged over all connections, ever
    std::size_t upload_queued_bytes_ = 0;  // chunk frames queued in sessions, not yet paced
    std::size_t upload_slots_busy_ = 0;
    std::deque<session*> slot_waiters_;    // sessions waiting for an upload slot, in turn
    mutable core::rate_meter up_meter_;  // reading a meter rolls its window: not a logical change
    mutable core::rate_meter down_meter_;
    core::rate_meter published_meter_{core::milliseconds(500), 20};  // source: stream frames per second
    playback_handler playback_;
    std::mt19937_64 rng_;

    std::unordered_map<core::peer_id, std::shared_ptr<session>> sessions_;  // handshake done
    std::set<std::shared_ptr<session>> pending_;                            // handshake under way
    std::map<std::string, candidate> candidates_;                          // "ip:port"
    std::set<std::string> connecting_;
    std::map<core::peer_id, core::time_point> banned_ids_;
    std::map<std::string, core::time_point> banned_endpoints_;

    // Join state (viewing peers): probe the live edge, then start the playout.
    enum class join_state { waiting, probing, playing } join_ = join_state::waiting;
    core::chunk_id probe_edge_;
    core::time_point probe_started_{};
    double interval_s_ = 0.25;  // estimated seconds between chunks (pixtream-source cuts 0.25 s by default)
    std::map<core::chunk_id, core::time_point> header_requests_;
    std::size_t push_cursor_ = 0;
    std::map<core::chunk_id, std::pair<core::time_point, std::size_t>> fresh_copies_;  // source: publish time, copies
    std::deque<std::pair<core::time_point, core::chunk_id>> unannounced_;  // source: fresh chunks not yet in HAVEs
    node_stats stats_;
};

}  // namespace pixtream::peer
