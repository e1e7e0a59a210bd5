// Subscription: windows of consistent snapshots, woken by LISTEN/NOTIFY or a
// poll timeout, on a connection that is reopened when it breaks.
#include "internal.hpp"

#include <cerrno>
#include <memory>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace coherence {
namespace {

// Thrown from inside a window when stop() was called, to unwind the stream
// without delivering more rows.
struct Stopped {};

// Milliseconds from now until `deadline`, for poll(); never negative.
int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

// Registering a receiver makes libpqxx LISTEN on the channel; a notification
// only tells the subscription to look now instead of at the next poll.
class Subscription::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection &conn, bool &notified) : notification_receiver(conn, "coherence"), notified_(notified) {}
  // The payload (the highest seq_no written) is not needed: a window reads
  // the current upper bound itself.
  void operator()(const std::string &, int) override { notified_ = true; }

 private:
  bool &notified_;
};

// The pipe exists from the start so that stop() works before and during run().
Subscription::Subscription(std::string conninfo, std::int64_t from, std::function<void(const Event &)> on_event,
                           SubscriptionOptions options)
    : conninfo_(std::move(conninfo)),
      on_event_(std::move(on_event)),
      options_(std::move(options)),
      position_(from) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "coherence: cannot create the subscription's wake pipe");
  wake_read_ = fds[0];
  wake_write_ = fds[1];
}

// Closes the wake pipe; run() must have returned.
Subscription::~Subscription() {
  ::close(wake_read_);
  ::close(wake_write_);
}

// Reconnects around window/wait cycles until stopped.
void Subscription::run() {
  bool connected_before = false;
  while (!stopping_) {
    std::unique_ptr<pqxx::connection> conn;
    try {
      conn = std::make_unique<pqxx::connection>(conninfo_);
      connected_before = true;
      bool notified = false;
      const Listener listener{*conn, notified};
      while (!stopping_) {
        // Reset before reading: a notification arriving during the window
        // sets it again and causes one more (cheap) window.
        notified = false;
        read_window(*conn);
        wait(*conn, notified);
      }
    } catch (const Stopped &) {
      return;
    } catch (const pqxx::failure &e) {
      // Lost means the connection is gone, whichever exception reported it:
      // broken_connection, an sql_error such as 57P01 (backend terminated)
      // or in_doubt_error from a COMMIT. Other errors are the caller's.
      const bool lost = dynamic_cast<const pqxx::broken_connection *>(&e) != nullptr || !conn || !conn->is_open();
      // A first connection that fails is a configuration error, not an
      // outage: report it rather than retry forever.
      if (!lost || !connected_before) throw;
      if (stopping_) return;
      if (options_.on_reconnect) options_.on_reconnect(e);
      pause(options_.reconnect_delay);
    }
  }
}

// Sets the flag and wakes the wait; only async-signal-safe calls.
void Subscription::stop() noexcept {
  stopping_ = true;
  // Wakes a wait in poll(); async-signal-safe. A full pipe already wakes it.
  const char byte = 1;
  [[maybe_unused]] const auto written = ::write(wake_write_, &byte, 1);
}

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
        if (stopping_) throw Stopped{};
        on_event_(event);
        window_delivered_ = event.seq_no;
      },
      *window_to_, options_.kinds);
  tx.commit();
  position_ = *window_to_ + 1;
  window_to_.reset();
}

// Until a notification, the poll interval, or stop(); throws if the connection dies.
void Subscription::wait(pqxx::connection &conn, const bool &notified) {
  const auto deadline = std::chrono::steady_clock::now() + options_.poll_interval;
  while (!stopping_ && !notified) {
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return;
    // libpq drops the socket once it sees the connection die.
    if (conn.sock() < 0) throw pqxx::broken_connection{"coherence: the subscription's connection was lost"};
    pollfd fds[2] = {{conn.sock(), POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (::poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "coherence: poll");
    }
    if (fds[0].revents != 0) {
      conn.get_notifs();
      if (!conn.is_open()) throw pqxx::broken_connection{"coherence: the subscription's connection was lost"};
    }
  }
}

// Sleeps between reconnection attempts, cut short by stop().
void Subscription::pause(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!stopping_) {
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return;
    pollfd fd{wake_read_, POLLIN, 0};
    ::poll(&fd, 1, timeout);
  }
}

}  // namespace coherence
