// Projector against the real server: a SIGKILL in the middle of a window
// leaves no trace, replays reset each affected aggregate once before its
// rows, a failing handler rolls its window back, one runner per name.
#include "model.hpp"
#include "process.hpp"
#include "support.hpp"

#include "pqxx_compat.hpp"

#include <csignal>
#include <mutex>

namespace coherence::test {
namespace {

class ProjectorTest : public StoreTest {
 protected:
  // The checkpoint as the database has it.
  std::int64_t stored_checkpoint(const std::string &name) {
    return std::stoll(sql("SELECT coherence_checkpoint('" + name + "')"));
  }

  // Runs a fresh projector into a fresh table until it has everything: the
  // reference a projection after crashes must equal.
  std::string from_scratch(const std::string &table) {
    create_model(db.conninfo(), table);
    Projector scratch{table, db.conninfo(), model_handler(table), model_reset(table)};
    const std::int64_t head = store.seq_no();
    {
      Running<Projector> running{scratch};
      wait_until([&] { return scratch.checkpoint() == head; });
    }
    return dump_model(db.conninfo(), table);
  }
};

// A log of what a projector's hooks were called with, from its run() thread.
struct Calls {
  std::mutex mutex;
  std::vector<std::string> log;

  // Appends one entry.
  void add(std::string entry) {
    const std::lock_guard<std::mutex> lock(mutex);
    log.push_back(std::move(entry));
  }
  // The entries so far, clearing the log.
  std::vector<std::string> take() {
    const std::lock_guard<std::mutex> lock(mutex);
    return std::exchange(log, {});
  }
};

TEST_F(ProjectorTest, KilledInTheMiddleOfAWindowThenRestartedEqualsAProjectionFromScratch) {
  // 1000 events: actions on 37 receipts linked to 7 keys, and every 50th
  // event an effect on a key, so windows replay aggregates too.
  std::vector<NewEvent> history;
  for (int i = 1; i <= 1000; ++i) {
    if (i % 50 == 0) {
      history.push_back(effect(Identity{"key", std::to_string(i / 50 % 7)}));
      continue;
    }
    const Identity receipt{"receipt", std::to_string(i % 37)};
    const std::vector<Identity> keys{Identity{"key", std::to_string(i % 7)}};
    history.push_back(action("a", receipt, "k" + std::to_string(i % 5), i, keys));
  }
  ASSERT_TRUE(std::holds_alternative<Ok>(store.rebase(1, history)));
  create_model(db.conninfo(), "model");

  // Windows are 100 seq_nos: the child commits 1-100 and 101-200, blocks at 249 in
  // 201-300 and dies there; restarted, it commits up to 600 and dies in
  // 601-700, in the middle of replayed rows' windows.
  for (const auto &[block_at, committed] : {std::pair{249, 200}, std::pair{649, 600}}) {
    Background child{{COHERENCE_PROJECTOR_CHILD, db.conninfo(), "model", std::to_string(block_at)}};
    ASSERT_EQ(child.read_line(), "blocked at " + std::to_string(block_at)) << child.err();
    EXPECT_EQ(stored_checkpoint("model"), committed);
    EXPECT_EQ(child.stop(SIGKILL), 128 + SIGKILL);
  }

  ProjectorOptions options;
  options.max_window = 100;
  options.when_locked = WhenLocked::wait;  // the killed backend may not have noticed yet
  options.lock_retry_interval = std::chrono::milliseconds{10};
  Projector restarted{"model", db.conninfo(), model_handler("model"), model_reset("model"), options};
  {
    Running<Projector> running{restarted};
    wait_until([&] { return restarted.checkpoint() == 1000; });
  }
  EXPECT_EQ(stored_checkpoint("model"), 1000);
  const std::string model = dump_model(db.conninfo(), "model");
  EXPECT_EQ(model, from_scratch("scratch"));
  // And the projection is the aggregates' state: every action applied once.
  EXPECT_EQ(sql("SELECT count(*) FROM model m WHERE m.state <> coherence_aggregate(m.kind, m.id) "
                "OR m.applied <> (SELECT count(*) FROM coherence_stream() s WHERE s.aggregate_id = m.id)"),
            "0");
  EXPECT_EQ(sql("SELECT count(*) FROM model"), "37");
}

TEST_F(ProjectorTest, ReplayResetsEachAffectedAggregateOnceBeforeItsFirstRow) {
  EXPECT_OK(store.rebase(1, {action("a", {"receipt", "1"}, "x", 1, {{"key", "1"}}),   // 1
                   action("a", {"receipt", "2"}, "x", 1, {{"key", "1"}}),   // 2
                   action("a", {"receipt", "3"}, "x", 1, {{"key", "2"}}),   // 3
                   action("a", {"receipt", "1"}, "y", 2, {{"key", "1"}}),   // 4
                   action("a", {"book", "x"})}));                            // 5
  create_model(db.conninfo(), "model");
  const auto project = model_handler("model");
  const auto reset = model_reset("model");
  Calls calls;
  Projector projector{"model", db.conninfo(),
                      [&](pqxx::transaction_base &tx, const Event &e) {
                        calls.add(std::to_string(e.seq_no) + (e.replayed ? " replayed" : ""));
                        project(tx, e);
                      },
                      [&](pqxx::transaction_base &tx, const Identity &aggregate) {
                        calls.add("reset " + aggregate.kind + "/" + aggregate.id);
                        reset(tx, aggregate);
                      }};
  Running<Projector> running{projector};
  wait_until([&] { return projector.checkpoint() == 5; });
  EXPECT_EQ(calls.take(), (std::vector<std::string>{"1", "2", "3", "4", "5"}));

  // One window with two effects on key 1 and a trailing effect: receipts 1
  // and 2 are reset once each, right before their first replayed row.
  EXPECT_OK(store.rebase(6, {effect({"key", "1"}),                                    // 6
                   action("a", {"receipt", "3"}, "z", 3),                   // 7
                   action("a", {"receipt", "2"}, "z", 3),                   // 8
                   effect({"key", "1"})}));                                  // 9
  wait_until([&] { return projector.checkpoint() == 9; });
  EXPECT_EQ(calls.take(), (std::vector<std::string>{"reset receipt/1", "1 replayed", "reset receipt/2", "2 replayed",
                                                    "4 replayed", "7", "8"}));
  EXPECT_EQ(stored_checkpoint("model"), 9);
  // Rebuilt, not applied on top: receipt 1 has its 2 actions, not 4.
  EXPECT_EQ(dump_model(db.conninfo(), "model"),
            "book/x 1 {\"x\": 1}\n"
            "receipt/1 2 {\"x\": 1, \"y\": 2}\n"
            "receipt/2 2 {\"x\": 1, \"z\": 3}\n"
            "receipt/3 2 {\"x\": 1, \"z\": 3}\n");
}

TEST_F(ProjectorTest, HandlerExceptionRollsBackTheWholeWindowResetIncluded) {
  EXPECT_OK(store.rebase(1, {action("a", {"receipt", "1"}, "x", 1, {{"key", "1"}}), action("a", {"book", "x"})}));
  create_model(db.conninfo(), "model");
  const auto project = model_handler("model");
  {
    Projector first{"model", db.conninfo(), project, model_reset("model")};
    Running<Projector> running{first};
    wait_until([&] { return first.checkpoint() == 2; });
  }
  const std::string before = dump_model(db.conninfo(), "model");

  // The window resets receipt 1, replays it, then fails on the new book.
  EXPECT_OK(store.rebase(3, {effect({"key", "1"}), action("a", {"book", "y"})}));
  bool reset_called = false;
  Projector failing{"model", db.conninfo(),
                    [&](pqxx::transaction_base &tx, const Event &e) {
                      if (e.seq_no == 4) throw std::runtime_error("projection failed");
                      project(tx, e);
                    },
                    [&](pqxx::transaction_base &tx, const Identity &aggregate) {
                      reset_called = true;
                      model_reset("model")(tx, aggregate);
                    }};
  EXPECT_THROW(failing.run(), std::runtime_error);
  EXPECT_TRUE(reset_called);
  EXPECT_EQ(stored_checkpoint("model"), 2);
  EXPECT_EQ(dump_model(db.conninfo(), "model"), before);

  // Fixed and restarted, it applies the window from the checkpoint.
  Projector fixed{"model", db.conninfo(), project, model_reset("model")};
  {
    Running<Projector> running{fixed};
    wait_until([&] { return fixed.checkpoint() == 4; });
  }
  EXPECT_EQ(dump_model(db.conninfo(), "model"), "book/x 1 {\"x\": 1}\nbook/y 1 {\"x\": 1}\nreceipt/1 1 {\"x\": 1}\n");
}

TEST_F(ProjectorTest, SameNameFailsClearlyWhileOneRunsAndDifferentNamesRunSideBySide) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  Projector first{"catalogue", db.conninfo(), [](pqxx::transaction_base &, const Event &) {}};
  Running<Projector> running{first};
  wait_until([&] { return first.checkpoint() == 1; });

  int handled = 0;
  Projector second{"catalogue", db.conninfo(), [&](pqxx::transaction_base &, const Event &) { ++handled; }};
  try {
    second.run();
    ADD_FAILURE() << "the second projector ran";
  } catch (const ProjectorLocked &e) {
    EXPECT_NE(std::string(e.what()).find("projector \"catalogue\" is already running (backend pid "),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(handled, 0);

  // Another name takes another lock: in fail mode it would throw otherwise.
  Projector other{"authors", db.conninfo(), [&](pqxx::transaction_base &, const Event &) { ++handled; }};
  {
    Running<Projector> running_other{other};
    wait_until([&] { return other.checkpoint() == 1; });
  }
  EXPECT_EQ(handled, 1);
}

TEST_F(ProjectorTest, SameNameWaitsUntilTheFirstStopsThenGoesOnFromItsCheckpoint) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  Calls first_calls, second_calls;
  std::atomic<bool> first_stopped{false};
  Projector first{"catalogue", db.conninfo(),
                  [&](pqxx::transaction_base &, const Event &e) { first_calls.add(std::to_string(e.seq_no)); }};
  auto running_first = std::make_unique<Running<Projector>>(first);
  wait_until([&] { return first.checkpoint() == 1; });

  ProjectorOptions options;
  options.when_locked = WhenLocked::wait;
  options.lock_retry_interval = std::chrono::milliseconds{10};
  std::atomic<int> waits{0};
  options.on_lock_wait = [&] { ++waits; };
  Projector second{"catalogue", db.conninfo(),
                   [&](pqxx::transaction_base &, const Event &e) {
                     EXPECT_TRUE(first_stopped) << "the second projector ran while the first did";
                     second_calls.add(std::to_string(e.seq_no));
                   },
                   {}, options};
  Running<Projector> running_second{second};
  wait_until([&] { return waits > 0; });

  // While the second waits, the first keeps projecting.
  EXPECT_OK(store.rebase(2, {action("a", {"book", "2"})}));
  wait_until([&] { return first.checkpoint() == 2; });
  first_stopped = true;
  running_first.reset();

  // The second takes over from the checkpoint: nothing applied twice.
  EXPECT_OK(store.rebase(3, {action("a", {"book", "3"})}));
  wait_until([&] { return second.checkpoint() == 3; });
  EXPECT_EQ(first_calls.take(), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(second_calls.take(), (std::vector<std::string>{"3"}));
}

TEST_F(ProjectorTest, ReconnectsAfterItsBackendIsTerminatedTakingTheLockAgain) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  create_model(db.conninfo(), "model");
  const std::string app = "coherence_projector_" + std::to_string(::getpid());
  std::atomic<int> reconnects{0};
  ProjectorOptions options;  // fail mode: only its own, released, lock could stop it
  options.reconnect_delay = std::chrono::milliseconds{10};
  options.on_reconnect = [&](const std::exception &) { ++reconnects; };
  Projector projector{"model", db.conninfo("application_name=" + app), model_handler("model"), model_reset("model"),
                      options};
  Running<Projector> running{projector};
  wait_until([&] { return projector.checkpoint() == 1; });
  const std::string old_pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = '" + app + "'");
  EXPECT_EQ(sql("SELECT pg_terminate_backend(" + old_pid + ", 10000)"), "t");

  EXPECT_OK(store.rebase(2, {action("a", {"book", "1"}, "y", 2), action("a", {"book", "2"})}));
  wait_until([&] { return projector.checkpoint() == 3; });
  EXPECT_GE(reconnects, 1);
  const std::string new_pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = '" + app + "'");
  EXPECT_NE(new_pid, old_pid);
  EXPECT_EQ(sql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            new_pid);
  EXPECT_EQ(dump_model(db.conninfo(), "model"), "book/1 2 {\"x\": 1, \"y\": 2}\nbook/2 1 {\"x\": 1}\n");
}

// Defect 1 for projectors: an event appended by a handler (on another
// connection) waited the whole poll interval.
TEST_F(ProjectorTest, EventAppendedByAHandlerIsProjectedWithoutWaitingThePollInterval) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  ProjectorOptions options;
  options.poll_interval = std::chrono::seconds{8};
  pqxx::connection writer{db.conninfo()};
  Projector projector{"model", db.conninfo(),
                      [&](pqxx::transaction_base &, const Event &e) {
                        if (e.seq_no == 1) {
                          EXPECT_OK(Store{writer}.rebase(2, {action("h", {"book", "2"})}));
                        }
                      },
                      {}, options};
  Running<Projector> running{projector};
  EXPECT_TRUE(wait_until([&] { return projector.checkpoint() == 2; }, std::chrono::seconds{3}));
}

// Defect 6 for projectors: a window whose writes lost a race ended run()
// with serialization_failure. Here the handler's row is updated by another
// connection after the window's snapshot: the window is rolled back and
// applied again, once.
TEST_F(ProjectorTest, AWindowThatFailsToSerializeIsAppliedAgain) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"}), action("a", {"book", "2"})}));
  sql("CREATE TABLE counts (k int PRIMARY KEY, n int NOT NULL); INSERT INTO counts VALUES (1, 0)");
  std::atomic<int> calls{0};
  Projector projector{"counts", db.conninfo(), [&](pqxx::transaction_base &tx, const Event &) {
                        if (++calls == 1) sql("UPDATE counts SET n = n + 100");  // a concurrent writer
                        compat::exec(tx, "UPDATE counts SET n = n + 1");
                      }};
  {
    Running<Projector> running{projector};
    ASSERT_TRUE(wait_until([&] { return projector.checkpoint() == 2; }));
  }
  EXPECT_EQ(calls, 3);  // 1 failed, then 2 in the window applied again
  EXPECT_EQ(sql("SELECT n FROM counts"), "102");
}

TEST_F(ProjectorTest, StopEndsAWaitForTheLock) {
  Projector first{"catalogue", db.conninfo(), [](pqxx::transaction_base &, const Event &) {}};
  Running<Projector> running{first};
  wait_until([&] {
    return sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
               "(SELECT oid FROM pg_database WHERE datname = current_database())") == "1";
  });
  ProjectorOptions options;
  options.when_locked = WhenLocked::wait;
  options.lock_retry_interval = std::chrono::hours{1};
  std::atomic<int> waits{0};
  options.on_lock_wait = [&] { ++waits; };
  Projector second{"catalogue", db.conninfo(), [](pqxx::transaction_base &, const Event &) {}, {}, options};
  std::thread runner([&] { second.run(); });
  wait_until([&] { return waits > 0; });
  second.stop();
  runner.join();  // returns although the retry interval is an hour
  EXPECT_EQ(waits, 1);
}

}  // namespace
}  // namespace coherence::test
