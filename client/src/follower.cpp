// The follow loop shared by Subscription and Projector: reconnects around
// read/wait cycles, woken by LISTEN/NOTIFY, a poll timeout or a self-pipe.
#include "follower.hpp"

#include "internal.hpp"
#include "pqxx_compat.hpp"

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
                   const std::function<void(pqxx::connection &)> &read, bool short_polls,
                   const std::function<bool()> &others_open) {
  bool connected_before = false, down = false;
  int failures = 0;
  const auto all_open = [&](const std::unique_ptr<pqxx::connection> &conn) {
    return conn && conn->is_open() && (!others_open || others_open());
  };
  while (!stopping_) {
    std::unique_ptr<pqxx::connection> conn;
    try {
      conn = std::make_unique<pqxx::connection>(conninfo);
      connected_before = true;
      on_connect(*conn);
      // LISTEN is refused during recovery: a standby is polled instead.
      bool standby = false;
      {
        pqxx::nontransaction tx{*conn};
        standby = in_recovery(tx);
        if (!standby) compat::exec(tx, "LISTEN coherence");
      }
      if (down) {
        down = false;
        failures = 0;
        if (options_.on_reconnected) options_.on_reconnected();
      }
      const auto interval = standby || short_polls ? options_.standby_poll_interval : options_.poll_interval;
      while (!stopping_) {
        read(*conn);
        wait(*conn, interval);
      }
    } catch (const Stopped &) {
      return;
    } catch (const HandlerFailed &failed) {
      // A handler's own error, unless this loop's connection broke under it
      // (a projector's handler writes through the window's transaction).
      if (all_open(conn)) std::rethrow_exception(failed.error);
      try {
        std::rethrow_exception(failed.error);
      } catch (const std::exception &e) {
        if (!lost(e, failures, down)) return;
      }
    } catch (const pqxx::failure &e) {
      // Lost means a connection of this loop is gone, whichever exception
      // reported it: broken_connection, an sql_error such as 57P01 (backend
      // terminated) or in_doubt_error from a COMMIT. Other errors are the
      // caller's. A first connection that fails is a configuration error,
      // not an outage: report it rather than retry forever.
      const bool gone = dynamic_cast<const pqxx::broken_connection *>(&e) != nullptr || !all_open(conn);
      if (!gone || !connected_before) throw;
      if (!lost(e, failures, down)) return;
    }
  }
}

// Reports the first loss of a run of failures (a state change, not every
// attempt) and sleeps the backoff; false when stopped meanwhile.
bool Follower::lost(const std::exception &error, int &failures, bool &down) {
  if (stopping_) return false;
  if (!down) {
    down = true;
    if (options_.on_reconnect) options_.on_reconnect(error);
  }
  ++failures;
  return pause(backoff(failures, options_.reconnect_delay, options_.max_reconnect_delay));
}

// Sets the flag and wakes a wait in poll(); a full pipe already wakes it.
void Follower::stop() noexcept {
  stopping_ = true;
  const char byte = 1;
  [[maybe_unused]] const auto written = ::write(wake_write_, &byte, 1);
}

// poll() on the wake pipe alone.
bool Follower::pause(std::chrono::microseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!stopping_) {
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return true;
    pollfd fd{wake_read_, POLLIN, 0};
    ::poll(&fd, 1, timeout);
  }
  return false;
}

// Until a notification, the interval, or stop(); throws if the connection dies.
void Follower::wait(pqxx::connection &conn, std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + interval;
  // A notification that arrived while the window's statements ran was read
  // from the socket and queued by libpq then: the socket has nothing new to
  // say about it, so look at the queue first (as await_notification does).
  if (conn.get_notifs() > 0) return;
  while (!stopping_) {
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
      if (conn.get_notifs() > 0) return;
      if (!conn.is_open()) throw pqxx::broken_connection{"coherence: the connection was lost"};
    }
  }
}

}  // namespace coherence::internal
