// What Subscription and Projector share: a connection that is reopened when
// it breaks, LISTEN coherence, and waits between windows that a notification,
// a poll timeout or stop() ends. Not installed.
#pragma once

#include <coherence/coherence.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

namespace coherence::internal {

// Thrown from inside run()'s callbacks once stop() was called, to unwind
// without doing more; run() then returns normally.
struct Stopped {};

class Follower {
 public:
  // The pipe exists from the start so that stop() works before and during run().
  explicit Follower(const SubscriptionOptions &options);
  ~Follower();
  Follower(const Follower &) = delete;
  Follower &operator=(const Follower &) = delete;

  // Until stop(): opens a connection to `conninfo`, calls on_connect on it,
  // LISTENs, then alternates read(conn) with waiting for a notification or
  // the poll interval. A lost connection is reported to on_reconnect and
  // reopened after the reconnect delay (on_connect runs again); the first
  // connection failing, and any other exception, is thrown.
  void run(const std::string &conninfo, const std::function<void(pqxx::connection &)> &on_connect,
           const std::function<void(pqxx::connection &)> &read);

  // Makes run() return soon, even from inside a wait; final. Only
  // async-signal-safe calls, so a signal handler may call it.
  void stop() noexcept;

  bool stopping() const noexcept { return stopping_; }

  // Sleeps for `duration`, cut short by stop(); false when stopped.
  bool pause(std::chrono::milliseconds duration);

 private:
  class Listener;
  void wait(pqxx::connection &conn, const bool &notified);

  const SubscriptionOptions options_;
  std::atomic<bool> stopping_{false};
  int wake_read_ = -1, wake_write_ = -1;  // self-pipe that stop() writes to
};

}  // namespace coherence::internal
