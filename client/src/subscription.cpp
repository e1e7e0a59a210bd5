// Subscription: windows of consistent snapshots, read by the shared follow
// loop (follower.cpp) on a connection that is reopened when it breaks.
#include "follower.hpp"

namespace coherence {

// Nothing happens until run().
Subscription::Subscription(std::string conninfo, std::int64_t from, std::function<void(const Event &)> on_event,
                           SubscriptionOptions options)
    : conninfo_(std::move(conninfo)),
      on_event_(std::move(on_event)),
      options_(std::move(options)),
      follower_(std::make_unique<internal::Follower>(options_)),
      position_(from) {}

// Out of line: Follower is complete only here.
Subscription::~Subscription() = default;

// A subscription needs nothing on a new connection but the LISTEN the
// follow loop issues.
void Subscription::run() {
  follower_->run(
      conninfo_, [](pqxx::connection &) {}, [this](pqxx::connection &conn) { read_window(conn); });
}

// Async-signal-safe: only an atomic store and a write().
void Subscription::stop() noexcept { follower_->stop(); }

// Readable from any thread while run() advances it.
std::int64_t Subscription::position() const noexcept { return position_; }

// One snapshot: the upper bound and the rows up to it.
void Subscription::read_window(pqxx::connection &conn) {
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx{conn};
  // A window interrupted by a lost connection keeps its upper bound: rows up
  // to it are immutable, so the same stream comes back and the rows already
  // delivered (seq_no ascending) are skipped.
  if (!window_to_) {
    const std::int64_t head = seq_no(tx);
    if (head < position_) {
      tx.commit();  // nothing new: end the snapshot cleanly
      return;
    }
    window_to_ = head;
    window_delivered_ = 0;
  }
  stream(
      tx, position_,
      [this](const Event &event) {
        if (event.seq_no <= window_delivered_) return;
        if (follower_->stopping()) throw internal::Stopped{};
        on_event_(event);
        window_delivered_ = event.seq_no;
      },
      *window_to_, options_.kinds);
  tx.commit();
  position_ = *window_to_ + 1;
  window_to_.reset();
}

}  // namespace coherence
