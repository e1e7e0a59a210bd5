// Following a hot standby (LISTEN is refused during recovery), against the
// real streaming replica scripts/with-server.sh --standby starts: a
// subscription and `coherence tail` poll it, a projector reads its events
// there and keeps its read model on the primary. Without the standby these
// tests fail; they never skip.
#include "model.hpp"
#include "process.hpp"
#include "support.hpp"

#include "pqxx_compat.hpp"

#include <csignal>

namespace coherence::test {
namespace {

class StandbyTest : public StoreTest {
 protected:
  // The test database on the standby, once the standby has replayed its
  // creation and the extension; it must really be in recovery.
  std::string standby() {
    const std::string conninfo = standby_conninfo(db.name());
    EXPECT_TRUE(wait_until([&] {
      try {
        pqxx::connection probe{conninfo};
        pqxx::nontransaction tx{probe};
        return compat::exec(tx, "SELECT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_extension "
                                "WHERE extname = 'coherence')")[0][0]
            .as<bool>();
      } catch (const pqxx::broken_connection &) {
        return false;
      }
    }));
    return conninfo;
  }
};

TEST_F(StandbyTest, SubscriptionFollowsAHotStandby) {
  const std::string on_standby = standby();
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  std::atomic<std::int64_t> last{0};
  SubscriptionOptions options;
  options.poll_interval = std::chrono::hours{1};  // only the standby polling can find new events
  Subscription sub{on_standby, 1, [&](const Event &e) { last = e.seq_no; }, options};
  Running<Subscription> running{sub};
  ASSERT_TRUE(wait_until([&] { return sub.position() == 2; }));
  EXPECT_OK(store.rebase(2, {action("a", {"book", "2"}), action("a", {"book", "3"})}));
  ASSERT_TRUE(wait_until([&] { return sub.position() == 4; }));
  EXPECT_EQ(last, 3);
}

TEST_F(StandbyTest, ProjectorReadsTheStandbyAndWritesThePrimary) {
  const std::string on_standby = standby();
  std::vector<NewEvent> history;
  for (int i = 1; i <= 300; ++i) {
    if (i % 30 == 0) {
      history.push_back(effect(Identity{"key", std::to_string(i % 7)}));
      continue;
    }
    const Identity receipt{"receipt", std::to_string(i % 17)};
    const std::vector<Identity> keys{Identity{"key", std::to_string(i % 7)}};
    history.push_back(action("a", receipt, "k" + std::to_string(i % 3), i, keys));
  }
  EXPECT_OK(store.rebase(1, history));
  create_model(db.conninfo(), "model");
  ProjectorOptions options;
  options.poll_interval = std::chrono::hours{1};
  options.max_window = 50;
  options.stream_conninfo = on_standby;
  Projector projector{"model", db.conninfo(), model_handler("model"), model_reset("model"), options};
  {
    Running<Projector> running{projector};
    ASSERT_TRUE(wait_until([&] { return projector.checkpoint() == 300; }));
    EXPECT_OK(store.rebase(301, {action("a", {"receipt", "1"}, "late", 1), effect({"key", "1"})}));
    ASSERT_TRUE(wait_until([&] { return projector.checkpoint() == 302; }));
  }
  EXPECT_EQ(sql("SELECT coherence_checkpoint('model')"), "302");
  EXPECT_EQ(sql("SELECT count(*) FROM model m WHERE m.state <> coherence_aggregate(m.kind, m.id) "
                "OR m.applied <> (SELECT count(*) FROM coherence_stream() s WHERE s.aggregate_id = m.id)"),
            "0");
  EXPECT_EQ(sql("SELECT count(*) FROM model"), "17");
}

TEST_F(StandbyTest, TailFollowsAHotStandby) {
  const std::string on_standby = standby();
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  Background tail({COHERENCE_CLI, "--db", on_standby, "tail", "--from", "1"});
  EXPECT_EQ(nlohmann::json::parse(tail.read_line())["seq_no"], 1);
  EXPECT_OK(store.rebase(2, {action("b", {"book", "2"})}));
  EXPECT_EQ(nlohmann::json::parse(tail.read_line())["seq_no"], 2);
  EXPECT_EQ(tail.stop(SIGTERM), 0) << tail.err();
}

TEST_F(StandbyTest, AppendsOnAStandbyFailWith25006AndReadsWork) {
  const std::string on_standby = standby();
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  ASSERT_TRUE(wait_until([&] {
    pqxx::connection probe{on_standby};
    return Store{probe}.seq_no() == 1;
  }));
  pqxx::connection conn_standby{on_standby};
  Store standby_store{conn_standby};
  EXPECT_TRUE(standby_store.event(1));
  EXPECT_EQ(aggregate(conn_standby, {"book", "1"}).state, (nlohmann::json{{"x", 1}}));
  try {
    (void)standby_store.rebase(2, {action("a", {"book", "2"})});
    FAIL() << "an append on a standby succeeded";
  } catch (const pqxx::sql_error &e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
  }
}

}  // namespace
}  // namespace coherence::test
