// Store against the real server: every struct survives the round trip, the
// answers of rebase (ok, conflict, invalid base, dry), client-side
// validation, and errors that keep their SQLSTATE.
#include "support.hpp"

namespace coherence::test {
namespace {

using nlohmann::json;

// 2026-11-22T10:00:00.123456Z plus `micros`.
Timestamp at(std::int64_t micros = 0) {
  const std::int64_t base_us = 1795341600LL * 1000000 + 123456;
  return Timestamp{std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds{base_us + micros})};
}

// An action that exercises every field: nested and flat paths, every JSON
// value type, dissoc, two triggers, a timestamp and non-ASCII text.
NewEvent rich_action() {
  Patch patch;
  patch.assoc = {{{"title"}, "Neuromancer — première"},
                 {{"address", "city"}, "Zürich"},
                 {{"meta", "tags"}, json::array({"a", 1, nullptr, true, 2.5})},
                 {{"meta", "nested"}, json{{"k", json::object()}}},
                 {{"count"}, 42}};
  patch.dissoc = {{"obsolete"}, {"address", "zip"}};
  return NewEvent{"bookstore ✓", Action{"create", {"user", "alice"}, {"book", "Neuromancer"}, patch},
                  {{"encryption-key", "1"}, {"encryption-key", "2"}}, at()};
}

// An effect with a timestamp.
NewEvent rich_effect() { return NewEvent{"keystore", Effect{"key-expired", {"encryption-key", "1"}}, {}, at(1)}; }

// The stored form of a new event: what the server must give back.
Event stored(const NewEvent &e, std::int64_t seq_no) {
  return Event{seq_no, *e.timestamp, e.source, e.body, e.triggers, false};
}

TEST_F(StoreTest, EmptyStoreHasSeqNoZeroAndNoEvents) {
  EXPECT_EQ(store.seq_no(), 0);
  EXPECT_EQ(store.event(1), std::nullopt);
  EXPECT_EQ(store.stream(0, [](const Event &) {}), 0u);
}

TEST_F(StoreTest, EveryStructRoundTripsThroughTheServer) {
  const std::vector<NewEvent> history = {rich_action(), rich_effect(), action("bob", {"book", "Count Zero"})};
  const auto result = store.rebase(1, history);
  ASSERT_TRUE(std::holds_alternative<Ok>(result));
  const auto &events = std::get<Ok>(result).events;
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], stored(history[0], 1));
  EXPECT_EQ(events[1], stored(history[1], 2));
  // Without a timestamp the server chooses one; everything else is ours.
  EXPECT_EQ(events[2].seq_no, 3);
  EXPECT_EQ(events[2].body, history[2].body);
  EXPECT_EQ(events[2].source, "test");

  for (const auto &e : events) EXPECT_EQ(store.event(e.seq_no), e);
  std::vector<Event> streamed;
  store.stream(0, [&](const Event &e) { streamed.push_back(e); });
  EXPECT_EQ(streamed, (std::vector<Event>{events[0], events[2]}));  // effects are not rows
}

TEST_F(StoreTest, JsonConversionsRoundTrip) {
  const NewEvent a = rich_action(), e = rich_effect();
  EXPECT_EQ(json(a).get<NewEvent>(), a);
  EXPECT_EQ(json(e).get<NewEvent>(), e);
  const auto result = store.rebase(1, {a, e});
  const Ok ok = std::get<Ok>(result);
  for (const auto &event : ok.events) EXPECT_EQ(json(event).get<Event>(), event);
  EXPECT_EQ(json(result).get<RebaseResult>(), result);
  const RebaseResult conflict = store.rebase(1, {rich_action()});
  ASSERT_TRUE(std::holds_alternative<Conflict>(conflict));
  EXPECT_EQ(json(conflict).get<RebaseResult>(), conflict);
  const RebaseResult invalid = InvalidSeqNo{9};
  EXPECT_EQ(json(invalid).get<RebaseResult>(), invalid);
  EXPECT_EQ(json(invalid), json::parse(R"({"result":"invalid-seq-no","next_seq_no":9})"));
}

TEST_F(StoreTest, ReadsTimestampsInAnySessionTimeZone) {
  const NewEvent e = rich_action();
  store.rebase(1, {e});
  for (const char *zone : {"Asia/Kolkata", "America/St_Johns", "UTC", "Europe/Amsterdam"}) {
    pqxx::nontransaction{conn}.exec0(std::string("SET TimeZone = '") + zone + "'");
    EXPECT_EQ(store.event(1)->timestamp, *e.timestamp) << zone;
  }
  // A whole second prints without a fraction, half a second as ".5".
  for (const auto &[micros, seq_no] : {std::pair{876544, 2}, std::pair{376544, 3}}) {
    NewEvent later = action("x", {"n", std::to_string(seq_no)});
    later.timestamp = at(micros);
    store.rebase(seq_no, {later});
    EXPECT_EQ(store.event(seq_no)->timestamp, at(micros));
  }
}

TEST_F(StoreTest, ReadsPatchesWrittenInObjectFormAndNumericIds) {
  sql(R"(SELECT coherence_rebase(1, '[{"source":"sql","action":{"reason":"r","actor":["user",7],)"
      R"("aggregate":["receipt",1],"patch":{"assoc":{"a":1,"b":{"c":2}},"dissoc":["d",["e","f"]]}}}]'))");
  const auto e = store.event(1);
  ASSERT_TRUE(e);
  const auto &a = std::get<Action>(e->body);
  EXPECT_EQ(a.actor, (Identity{"user", "7"}));
  EXPECT_EQ(a.aggregate, (Identity{"receipt", "1"}));
  Patch expected;
  expected.assoc = {{{"a"}, 1}, {{"b"}, json{{"c", 2}}}};
  expected.dissoc = {{"d"}, {"e", "f"}};
  EXPECT_EQ(a.patch, expected);
  // A numeric id read from JSON is the same aggregate as its text.
  const auto numeric = json::parse(R"({"source":"s","action":{"reason":"r","actor":["u","a"],)"
                                   R"("aggregate":["receipt",1],"patch":{"assoc":{"x":1}}}})")
                           .get<NewEvent>();
  const auto result = store.rebase(1, {numeric});
  ASSERT_TRUE(std::holds_alternative<Conflict>(result));
  EXPECT_EQ(std::get<Conflict>(result).theirs.seq_no, 1);
}

TEST_F(StoreTest, ConflictWritesNothingAndResolvedAccepts) {
  store.rebase(1, {action("alice", {"book", "A"}), action("alice", {"book", "B"})});
  const auto conflict = store.rebase(2, {action("bob", {"book", "C"}), action("bob", {"book", "B"})});
  ASSERT_TRUE(std::holds_alternative<Conflict>(conflict));
  const auto &c = std::get<Conflict>(conflict);
  EXPECT_EQ(seq_nos(c.events), std::vector<std::int64_t>{3});
  EXPECT_EQ(c.ours.seq_no, 4);
  EXPECT_EQ(std::get<Action>(c.ours.body).aggregate, (Identity{"book", "B"}));
  EXPECT_EQ(c.theirs.seq_no, 2);
  EXPECT_EQ(store.seq_no(), 2);
  // Seen everything: base 3 has no conflict.
  const auto fresh = store.rebase(3, {action("bob", {"book", "B"})});
  ASSERT_TRUE(std::holds_alternative<Ok>(fresh));
  // From base 1, #2 and #3 both touch B; resolving only #2 still conflicts
  // with #3, resolving both is accepted.
  const auto partly = store.rebase(1, {action("carol", {"book", "B"})}, {2});
  ASSERT_TRUE(std::holds_alternative<Conflict>(partly));
  EXPECT_EQ(std::get<Conflict>(partly).theirs.seq_no, 3);
  const auto resolved = store.rebase(1, {action("carol", {"book", "B"})}, {2, 3});
  ASSERT_TRUE(std::holds_alternative<Ok>(resolved));
  EXPECT_EQ(seq_nos(std::get<Ok>(resolved).events), std::vector<std::int64_t>{4});
}

TEST_F(StoreTest, EffectOnALinkedTriggerConflicts) {
  store.rebase(1, {action("alice", {"receipt", "1"}, "x", 1, {{"key", "1"}})});
  store.rebase(2, {effect({"key", "1"})});
  const auto result = store.rebase(2, {action("alice", {"receipt", "1"})});
  ASSERT_TRUE(std::holds_alternative<Conflict>(result));
  EXPECT_TRUE(std::holds_alternative<Effect>(std::get<Conflict>(result).theirs.body));
  EXPECT_EQ(std::get<Conflict>(result).theirs.seq_no, 2);
}

TEST_F(StoreTest, InvalidBaseIsAnAnswer) {
  const auto result = store.rebase(2, {action("alice", {"book", "A"})});
  ASSERT_TRUE(std::holds_alternative<InvalidSeqNo>(result));
  EXPECT_EQ(std::get<InvalidSeqNo>(result).next_seq_no, 1);
  EXPECT_EQ(store.seq_no(), 0);
}

TEST_F(StoreTest, DryAnswersWithoutWriting) {
  const auto dry = store.rebase(1, {action("alice", {"book", "A"}), effect({"key", "1"})}, {}, true);
  ASSERT_TRUE(std::holds_alternative<Ok>(dry));
  EXPECT_EQ(seq_nos(std::get<Ok>(dry).events), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(store.seq_no(), 0);
  store.rebase(1, {action("alice", {"book", "A"})});
  const auto dry_conflict = store.rebase(1, {action("bob", {"book", "A"})}, {}, true);
  ASSERT_TRUE(std::holds_alternative<Conflict>(dry_conflict));
  EXPECT_EQ(std::get<Conflict>(dry_conflict).theirs.seq_no, 1);
  EXPECT_EQ(store.seq_no(), 1);
}

TEST_F(StoreTest, StreamFiltersByKindAndBounds) {
  store.rebase(1, {action("a", {"book", "1"}), action("a", {"receipt", "1"}), action("a", {"book", "2"}),
                   action("a", {"author", "1"})});
  std::vector<std::int64_t> got;
  const auto collect = [&](const Event &e) { got.push_back(e.seq_no); };
  EXPECT_EQ(store.stream(2, collect, 3), 2u);
  EXPECT_EQ(got, (std::vector<std::int64_t>{2, 3}));
  got.clear();
  store.stream(0, collect, std::nullopt, {"book", "author"});
  EXPECT_EQ(got, (std::vector<std::int64_t>{1, 3, 4}));
}

TEST_F(StoreTest, OperationsJoinTheCallersTransaction) {
  {
    pqxx::work tx{conn};
    ASSERT_TRUE(std::holds_alternative<Ok>(rebase(tx, 1, {action("a", {"book", "1"})})));
    EXPECT_EQ(seq_no(tx), 1);
    EXPECT_TRUE(event(tx, 1));
    tx.abort();
  }
  EXPECT_EQ(store.seq_no(), 0);
  {
    pqxx::work tx{conn};
    rebase(tx, 1, {action("a", {"book", "1"})});
    tx.exec0("CREATE TABLE mine (n int)");
    tx.commit();
  }
  EXPECT_EQ(store.seq_no(), 1);
}

// Each bad input must be caught by the client: a server-side rejection would
// be a pqxx::data_exception instead.
TEST_F(StoreTest, InvalidInputThrowsBeforeSending) {
  const NewEvent ok = action("alice", {"book", "A"});
  auto with = [&](auto change) {
    NewEvent e = ok;
    change(e);
    return std::vector<NewEvent>{e};
  };
  auto act = [](NewEvent &e) -> Action & { return std::get<Action>(e.body); };
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"base 0", [&] { store.rebase(0, {ok}); }},
      {"empty history", [&] { store.rebase(1, {}); }},
      {"resolved 0", [&] { store.rebase(1, {ok}, {0}); }},
      {"resolved duplicate", [&] { store.rebase(1, {ok}, {1, 1}); }},
      {"empty source", [&] { store.rebase(1, with([](NewEvent &e) { e.source = ""; })); }},
      {"empty reason", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).reason = ""; })); }},
      {"empty actor kind", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).actor.kind = ""; })); }},
      {"empty aggregate id", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).aggregate.id = ""; })); }},
      {"empty patch", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).patch = Patch{}; })); }},
      {"empty assoc path", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).patch.assoc[0].first = {}; })); }},
      {"empty dissoc path", [&] { store.rebase(1, with([&](NewEvent &e) { act(e).patch.dissoc = {{}}; })); }},
      {"duplicate triggers", [&] { store.rebase(1, with([](NewEvent &e) { e.triggers = {{"k", "1"}, {"k", "1"}}; })); }},
      {"empty trigger id", [&] { store.rebase(1, with([](NewEvent &e) { e.triggers = {{"k", ""}}; })); }},
      {"triggers on an effect",
       [&] { store.rebase(1, {NewEvent{"s", Effect{"r", {"k", "1"}}, {{"k", "2"}}}}); }},
      {"empty effect reason", [&] { store.rebase(1, {NewEvent{"s", Effect{"", {"k", "1"}}}}); }},
      {"empty effect trigger kind", [&] { store.rebase(1, {NewEvent{"s", Effect{"r", {"", "1"}}}}); }},
  };
  for (const auto &[name, call] : cases) EXPECT_THROW(call(), std::invalid_argument) << name;
  EXPECT_EQ(store.seq_no(), 0);
}

TEST_F(StoreTest, MalformedJsonThrowsInvalidArgument) {
  for (const char *text : {
           R"({"source":"s"})",
           R"({"source":"s","action":{},"effect":{}})",
           R"({"source":"s","effect":{"reason":"r","trigger":["k"]}})",
           R"({"source":"s","effect":{"reason":"r","trigger":["k","1"]},"colour":"red"})",
           R"({"source":"s","effect":{"reason":"r","trigger":["k","1"]},"timestamp":"2026-11-22T10:00:00"})",
           R"({"source":1,"effect":{"reason":"r","trigger":["k","1"]}})",
           R"({"source":"s","action":{"reason":"r","actor":["u","a"],"aggregate":["b","1"],"patch":{"assoc":[["a"]]}}})",
       })
    EXPECT_THROW(json::parse(text).get<NewEvent>(), std::invalid_argument) << text;
}

TEST_F(StoreTest, ServerErrorsKeepTheirSqlstate) {
  // A NUL character is valid in a std::string and in JSON text, but jsonb
  // rejects it: only the server can tell.
  NewEvent e = action("alice", {"book", "A"});
  e.source = std::string("a\0b", 3);
  try {
    store.rebase(1, {e});
    FAIL() << "expected a data_exception";
  } catch (const pqxx::data_exception &error) {
    EXPECT_EQ(error.sqlstate().substr(0, 2), "22");
  }
  // Without the extension the functions do not exist.
  TestDatabase bare{false};
  pqxx::connection bare_conn{bare.conninfo()};
  Store bare_store{bare_conn};
  try {
    bare_store.seq_no();
    FAIL() << "expected an undefined_function";
  } catch (const pqxx::sql_error &error) {
    EXPECT_EQ(error.sqlstate(), "42883");
  }
}

TEST_F(StoreTest, LostConnectionIsBrokenConnection) {
  store.seq_no();
  EXPECT_EQ(sql("SELECT pg_terminate_backend(" + std::to_string(conn.backendpid()) + ")"), "t");
  EXPECT_THROW(store.seq_no(), pqxx::broken_connection);
}

}  // namespace
}  // namespace coherence::test
