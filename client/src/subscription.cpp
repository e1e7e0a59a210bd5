// Subscription: windows of consistent snapshots, read by the shared follow
// loop (follower.cpp) on a connection that is reopened when it breaks.
#include "follower.hpp"
#include "pqxx_compat.hpp"

namespace coherence {

// Everything a running subscription touches, behind one pointer so the
// Subscription itself is movable.
struct Subscription::State {
  std::string conninfo;
  Handler on_event;
  WindowEnd on_window_end;
  SubscriptionOptions options;
  internal::Follower follower;
  std::atomic<std::int64_t> position;
  std::optional<std::int64_t> window_to;  // upper bound of an unfinished window
  std::int64_t window_delivered = 0;      // last seq_no delivered in it

  State(std::string conninfo_, std::int64_t from, Handler on_event_, SubscriptionOptions options_,
        WindowEnd on_window_end_)
      : conninfo(std::move(conninfo_)),
        on_event(std::move(on_event_)),
        on_window_end(std::move(on_window_end_)),
        options(std::move(options_)),
        follower(options),
        position(from) {}

  void read_window(pqxx::connection &conn);
};

// Nothing happens until run().
Subscription::Subscription(std::string conninfo, std::int64_t from, Handler on_event, SubscriptionOptions options,
                           WindowEnd on_window_end)
    : state_(std::make_unique<State>(std::move(conninfo), from, std::move(on_event), std::move(options),
                                     std::move(on_window_end))) {}

// Out of line: State is complete only here.
Subscription::~Subscription() = default;
Subscription::Subscription(Subscription &&) noexcept = default;
Subscription &Subscription::operator=(Subscription &&) noexcept = default;

// A subscription needs nothing on a new connection but the LISTEN the
// follow loop issues.
void Subscription::run() {
  State &s = *state_;
  s.follower.run(
      s.conninfo, [](pqxx::connection &) {}, [&s](pqxx::connection &conn) { s.read_window(conn); });
}

// Async-signal-safe: only an atomic store and a write().
void Subscription::stop() noexcept { state_->follower.stop(); }

// Readable from any thread while run() advances it.
std::int64_t Subscription::position() const noexcept { return state_->position; }

// One snapshot: the upper bound and the rows up to it.
void Subscription::State::read_window(pqxx::connection &conn) {
  compat::repeatable_read_ro tx{conn};
  // A window interrupted by a lost connection keeps its upper bound: rows up
  // to it are immutable, so the same stream comes back and the rows already
  // delivered (seq_no ascending) are skipped.
  if (!window_to) {
    const std::int64_t head = seq_no(tx);
    if (head < position) {
      tx.commit();  // nothing new: end the snapshot cleanly
      return;
    }
    window_to = head;
    window_delivered = 0;
  }
  stream(
      tx, position,
      [this](const Event &event) {
        if (event.seq_no <= window_delivered) return;
        if (follower.stopping()) throw internal::Stopped{};
        internal::call_handler([&] { on_event(event); });
        window_delivered = event.seq_no;
      },
      *window_to, options.kinds);
  tx.commit();
  const std::int64_t next = *window_to + 1;
  if (on_window_end) internal::call_handler([&] { on_window_end(next); });
  position = next;
  window_to.reset();
}

}  // namespace coherence
