// The follow loop shared by Subscription and Projector: reconnects around
// read/wait cycles, woken by LISTEN/NOTIFY, a poll timeout or a self-pipe.
#include "follower.hpp"

#include <cerrno>
#include <memory>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace coherence::internal {
namespace {

// Milliseconds from now until `deadline`, for poll(); never negative.
int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

// Registering a receiver makes libpqxx LISTEN on the channel; a notification
// only says "look now" instead of at the next poll.
class Follower::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection &conn, bool &notified) : notification_receiver(conn, "coherence"), notified_(notified) {}
  // The payload (the highest seq_no written) is not needed: a window reads
  // the current upper bound itself.
  void operator()(const std::string &, int) override { notified_ = true; }

 private:
  bool &notified_;
};

// Non-blocking, so stop() never blocks and a full pipe is harmless.
Follower::Follower(const SubscriptionOptions &options) : options_(options) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "coherence: cannot create the wake pipe");
  wake_read_ = fds[0];
  wake_write_ = fds[1];
}

// Closes the wake pipe; run() must have returned.
Follower::~Follower() {
  ::close(wake_read_);
  ::close(wake_write_);
}

// Reconnects around read/wait cycles until stopped.
void Follower::run(const std::string &conninfo, const std::function<void(pqxx::connection &)> &on_connect,
                   const std::function<void(pqxx::connection &)> &read) {
  bool connected_before = false;
  while (!stopping_) {
    std::unique_ptr<pqxx::connection> conn;
    try {
      conn = std::make_unique<pqxx::connection>(conninfo);
      connected_before = true;
      on_connect(*conn);
      bool notified = false;
      const Listener listener{*conn, notified};
      while (!stopping_) {
        // Reset before reading: a notification arriving during the read
        // sets it again and causes one more (cheap) read.
        notified = false;
        read(*conn);
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

// Sets the flag and wakes a wait in poll(); a full pipe already wakes it.
void Follower::stop() noexcept {
  stopping_ = true;
  const char byte = 1;
  [[maybe_unused]] const auto written = ::write(wake_write_, &byte, 1);
}

// poll() on the wake pipe alone.
bool Follower::pause(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!stopping_) {
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return true;
    pollfd fd{wake_read_, POLLIN, 0};
    ::poll(&fd, 1, timeout);
  }
  return false;
}

// Until a notification, the poll interval, or stop(); throws if the connection dies.
void Follower::wait(pqxx::connection &conn, const bool &notified) {
  const auto deadline = std::chrono::steady_clock::now() + options_.poll_interval;
  while (!stopping_ && !notified) {
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return;
    // libpq drops the socket once it sees the connection die.
    if (conn.sock() < 0) throw pqxx::broken_connection{"coherence: the connection was lost"};
    pollfd fds[2] = {{conn.sock(), POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (::poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "coherence: poll");
    }
    if (fds[0].revents != 0) {
      conn.get_notifs();
      if (!conn.is_open()) throw pqxx::broken_connection{"coherence: the connection was lost"};
    }
  }
}

}  // namespace coherence::internal
