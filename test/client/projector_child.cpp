// The projector of the crash test, as a process the test can SIGKILL:
//
//   projector_child CONNINFO NAME BLOCK_AT
//
// projects into the test model (table `model`) in windows of 100 seq_nos.
// When it is about to project the action with seq_no BLOCK_AT it prints
// "blocked at N", flushes, and blocks for good inside that window's
// transaction: the test kills it exactly there, no timing involved.
#include "model.hpp"

#include <iostream>

#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: projector_child CONNINFO NAME BLOCK_AT\n";
    return 2;
  }
  const std::int64_t block_at = std::stoll(argv[3]);
  coherence::ProjectorOptions options;
  options.max_window = 100;
  // The backend of a projector killed a moment ago may still hold the lock.
  options.when_locked = coherence::WhenLocked::wait;
  options.lock_retry_interval = std::chrono::milliseconds{10};
  const auto project = coherence::test::model_handler("model");
  coherence::Projector projector{argv[2], argv[1],
                                 [&](pqxx::transaction_base &tx, const coherence::Event &event) {
                                   if (event.seq_no == block_at && !event.replayed) {
                                     std::cout << "blocked at " << event.seq_no << std::endl;
                                     for (;;) ::pause();
                                   }
                                   project(tx, event);
                                 },
                                 coherence::test::model_reset("model"), options};
  projector.run();
  return 0;
}
