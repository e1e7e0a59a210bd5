// What Subscription and Projector share: a connection that is reopened when
// it breaks (with a capped, jittered backoff), LISTEN coherence (or short
// polls on a hot standby), and waits between windows that a notification, a
// poll timeout or stop() ends. Not installed.
#pragma once

#include <coherence/coherence.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <string>

namespace coherence::internal {

// Thrown from inside run()'s callbacks once stop() was called, to unwind
// without doing more; run() then returns normally.
struct Stopped {};

// What a user callback threw, wrapped so that it is never mistaken for a
// loss of the follower's own connection (a handler may use connections of
// its own, which break for reasons of their own).
struct HandlerFailed {
  std::exception_ptr error;
};

// Calls a user callback; what it throws comes out as HandlerFailed.
template <typename Callback>
void call_handler(Callback &&callback) {
  try {
    callback();
  } catch (const Stopped &) {
    throw;
  } catch (...) {
    throw HandlerFailed{std::current_exception()};
  }
}

class Follower {
 public:
  // The pipe exists from the start so that stop() works before and during run().
  explicit Follower(const SubscriptionOptions &options);
  ~Follower();
  Follower(const Follower &) = delete;
  Follower &operator=(const Follower &) = delete;

  // Until stop(): opens a connection to `conninfo`, calls on_connect on it,
  // LISTENs (unless the server is a standby or `short_polls`, then it polls
  // every standby_poll_interval), then alternates read(conn) with waiting.
  // A lost connection (its own, or one for which `others_open` says false)
  // is reported to on_reconnect once and reopened after a backoff
  // (on_connect runs again); the first connection failing, a HandlerFailed
  // (unwrapped) and any other exception are thrown.
  void run(const std::string &conninfo, const std::function<void(pqxx::connection &)> &on_connect,
           const std::function<void(pqxx::connection &)> &read, bool short_polls = false,
           const std::function<bool()> &others_open = {});

  // Makes run() return soon, even from inside a wait; final. Only
  // async-signal-safe calls, so a signal handler may call it.
  void stop() noexcept;

  bool stopping() const noexcept { return stopping_; }

  // Sleeps for `duration`, cut short by stop(); false when stopped.
  bool pause(std::chrono::microseconds duration);

 private:
  void wait(pqxx::connection &conn, std::chrono::milliseconds interval);
  bool lost(const std::exception &error, int &failures, bool &down);

  const SubscriptionOptions options_;
  std::atomic<bool> stopping_{false};
  int wake_read_ = -1, wake_write_ = -1;  // self-pipe that stop() writes to
};

}  // namespace coherence::internal
