// What every client test needs: a fresh database with the extension on the
// real throwaway server (PG* environment), event builders, and gtest
// printers for the library's structs.
#pragma once

#include <coherence/coherence.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <thread>

namespace coherence {

// gtest prints values of a failed comparison in the extension's JSON form.
void PrintTo(const Identity &v, std::ostream *os);
void PrintTo(const Patch &v, std::ostream *os);
void PrintTo(const NewEvent &v, std::ostream *os);
void PrintTo(const Event &v, std::ostream *os);

}  // namespace coherence

namespace coherence::test {

// A database created for one test and dropped (with its connections) after
// it, so tests never depend on each other or on what `postgres` contains.
class TestDatabase {
 public:
  explicit TestDatabase(bool with_extension = true);
  ~TestDatabase();
  TestDatabase(const TestDatabase &) = delete;
  TestDatabase &operator=(const TestDatabase &) = delete;

  const std::string &name() const { return name_; }
  // A libpq connection string for it; `extra` adds settings such as
  // "application_name=x".
  std::string conninfo(const std::string &extra = "") const;

 private:
  std::string name_;
};

// Fixture: a fresh database with the extension and a connection to it.
class StoreTest : public ::testing::Test {
 protected:
  TestDatabase db;
  pqxx::connection conn{db.conninfo()};
  Store store{conn};

  // Runs one SQL statement on a separate connection and returns the first
  // field of the first row as text (for checks from "another client").
  std::string sql(const std::string &query);
};

// An action on `aggregate` with an assoc of one top-level key.
NewEvent action(const std::string &actor, const Identity &aggregate, const std::string &key = "x",
                const nlohmann::json &value = 1, std::vector<Identity> triggers = {});

// An effect on a trigger.
NewEvent effect(const Identity &trigger, const std::string &reason = "key-expired");

// The seq_nos of events, for compact comparisons.
std::vector<std::int64_t> seq_nos(const std::vector<Event> &events);

// Waits until pred() holds; false (and the test fails) after `timeout`, so
// a condition that never comes true shows in seconds, not as CTest's
// timeout. The timeout is generous: it catches hangs, it does not measure.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds{30}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "condition still false after " << timeout.count() << " ms";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return true;
}

// An append that must be accepted.
#define EXPECT_OK(call) EXPECT_TRUE(std::holds_alternative<::coherence::Ok>(call)) << #call

// The port of the hot standby scripts/with-server.sh --standby started, or
// a failure: standby tests never skip.
std::string standby_conninfo(const std::string &dbname);

// run() of a Subscription or Projector on a thread for the scope; stops and
// joins at the end.
template <typename Runner>
class Running {
 public:
  explicit Running(Runner &r) : runner_(r), thread_([this] { runner_.run(); }) {}
  ~Running() {
    runner_.stop();
    thread_.join();
  }
  Running(const Running &) = delete;
  Running &operator=(const Running &) = delete;

 private:
  Runner &runner_;
  std::thread thread_;
};

}  // namespace coherence::test
