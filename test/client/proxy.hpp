// A small TCP proxy between a client and the test server, for losing a
// connection at an exact point: it forwards bytes both ways and, when told,
// refuses new connections or cuts a connection at its next COMMIT.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace coherence::test {

class Proxy {
 public:
  // What happens to the next COMMIT a client sends.
  enum class OnCommit {
    forward,       // pass it on
    drop_before,   // close both sides without passing it on: nothing commits
    drop_after,    // pass it on, then close both sides: it commits, the reply is lost
  };

  // Listens on 127.0.0.1 (a free port) and forwards to the server at
  // 127.0.0.1:PGPORT.
  Proxy();
  ~Proxy();
  Proxy(const Proxy &) = delete;
  Proxy &operator=(const Proxy &) = delete;

  // A conninfo for `dbname` through the proxy.
  std::string conninfo(const std::string &dbname) const;

  // Applies to the next COMMIT seen on any connection, then resets to forward.
  void on_next_commit(OnCommit action) { on_commit_ = action; }
  // While true, new connections are accepted and closed at once, and open
  // ones are cut.
  void refuse(bool refusing) { refusing_ = refusing; }
  // Connections accepted so far.
  int accepted() const { return accepted_; }
  // COMMITs cut so far.
  int cuts() const { return cuts_; }

 private:
  void serve();

  int listener_ = -1, wake_[2] = {-1, -1};
  int port_ = 0, server_port_ = 0;
  std::atomic<OnCommit> on_commit_{OnCommit::forward};
  std::atomic<bool> refusing_{false};
  std::atomic<int> accepted_{0}, cuts_{0};
  std::thread thread_;
};

}  // namespace coherence::test
