// Store against the real server: every struct survives the round trip, the
// answers of rebase (ok, conflict, invalid base, dry), client-side
// validation, and errors that keep their SQLSTATE.
#include "support.hpp"

#include "pqxx_compat.hpp"

#include <limits>

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
  EXPECT_OK(store.rebase(1, {e}));
  for (const char *zone : {"Asia/Kolkata", "America/St_Johns", "UTC", "Europe/Amsterdam"}) {
    {
      pqxx::nontransaction tx{conn};
      compat::exec(tx, std::string("SET TimeZone = '") + zone + "'");
    }
    EXPECT_EQ(store.event(1)->timestamp, *e.timestamp) << zone;
  }
  // A whole second prints without a fraction, half a second as ".5".
  for (const auto &[micros, seq_no] : {std::pair{876544, 2}, std::pair{376544, 3}}) {
    NewEvent later = action("x", {"n", std::to_string(seq_no)});
    later.timestamp = at(micros);
    EXPECT_OK(store.rebase(seq_no, {later}));
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
  EXPECT_OK(store.rebase(1, {action("alice", {"book", "A"}), action("alice", {"book", "B"})}));
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
  EXPECT_OK(store.rebase(1, {action("alice", {"receipt", "1"}, "x", 1, {{"key", "1"}})}));
  EXPECT_OK(store.rebase(2, {effect({"key", "1"})}));
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
  EXPECT_OK(store.rebase(1, {action("alice", {"book", "A"})}));
  const auto dry_conflict = store.rebase(1, {action("bob", {"book", "A"})}, {}, true);
  ASSERT_TRUE(std::holds_alternative<Conflict>(dry_conflict));
  EXPECT_EQ(std::get<Conflict>(dry_conflict).theirs.seq_no, 1);
  EXPECT_EQ(store.seq_no(), 1);
}

TEST_F(StoreTest, StreamFiltersByKindAndBounds) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"}), action("a", {"receipt", "1"}), action("a", {"book", "2"}),
                   action("a", {"author", "1"})}));
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
    EXPECT_OK(rebase(tx, 1, {action("a", {"book", "1"})}));
    compat::exec(tx, "CREATE TABLE mine (n int)");
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
      {"base 0", [&] { (void)store.rebase(0, {ok}); }},
      {"empty history", [&] { (void)store.rebase(1, {}); }},
      {"resolved 0", [&] { (void)store.rebase(1, {ok}, {0}); }},
      {"resolved duplicate", [&] { (void)store.rebase(1, {ok}, {1, 1}); }},
      {"empty source", [&] { (void)store.rebase(1, with([](NewEvent &e) { e.source = ""; })); }},
      {"empty reason", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).reason = ""; })); }},
      {"empty actor kind", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).actor.kind = ""; })); }},
      {"empty aggregate id", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).aggregate.id = ""; })); }},
      {"empty patch", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).patch = Patch{}; })); }},
      {"empty assoc path", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).patch.assoc[0].first = {}; })); }},
      {"empty dissoc path", [&] { (void)store.rebase(1, with([&](NewEvent &e) { act(e).patch.dissoc = {{}}; })); }},
      {"duplicate triggers", [&] { (void)store.rebase(1, with([](NewEvent &e) { e.triggers = {{"k", "1"}, {"k", "1"}}; })); }},
      {"empty trigger id", [&] { (void)store.rebase(1, with([](NewEvent &e) { e.triggers = {{"k", ""}}; })); }},
      {"triggers on an effect",
       [&] { (void)store.rebase(1, {NewEvent{"s", Effect{"r", {"k", "1"}}, {{"k", "2"}}}}); }},
      {"empty effect reason", [&] { (void)store.rebase(1, {NewEvent{"s", Effect{"", {"k", "1"}}}}); }},
      {"empty effect trigger kind", [&] { (void)store.rebase(1, {NewEvent{"s", Effect{"r", {"", "1"}}}}); }},
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
    EXPECT_OK(store.rebase(1, {e}));
    FAIL() << "expected a data_exception";
  } catch (const pqxx::data_exception &error) {
    EXPECT_EQ(error.sqlstate().substr(0, 2), "22");
  }
  // A server error after the extension was found keeps its SQLSTATE too.
  try {
    (void)store.rebase(1, {action("a", {"book", "1"})}, {5});
    pqxx::work tx{conn};
    compat::exec(tx, "SELECT coherence_advance('x', 99)");
    FAIL() << "expected 22023";
  } catch (const pqxx::sql_error &error) {
    EXPECT_EQ(error.sqlstate(), "22023") << error.what();
  }
}

// Defect: the hand-written parser took any day up to 31 (2026-02-30 became
// 2026-03-02), and a nanosecond time_point wrapped after 2262 (2300-01-01
// came back as 1715-06-13).
TEST_F(StoreTest, TimestampsAreValidatedAndKeepPostgresqlsWholeRange) {
  const auto with_timestamp = [](const std::string &timestamp) {
    return json::parse(R"({"source":"s","effect":{"reason":"r","trigger":["k","1"]},"timestamp":")" + timestamp +
                       "\"}")
        .get<NewEvent>();
  };
  for (const char *bad : {"2026-02-30T10:00:00Z", "2026-02-29T10:00:00Z", "2100-02-29T00:00:00Z",
                          "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                          "0000-01-01T00:00:00Z", "4714-11-23T23:59:59Z BC"})
    EXPECT_THROW(with_timestamp(bad), std::invalid_argument) << bad;
  EXPECT_NO_THROW(with_timestamp("2024-02-29T10:00:00Z"));
  EXPECT_NO_THROW(with_timestamp("2000-02-29T10:00:00Z"));
  // Far instants survive the trip through the server, to the microsecond.
  std::int64_t seq = 0;
  for (const char *text : {"2300-01-01T00:00:00Z", "1900-02-28T23:59:59.999999Z", "0001-01-01T00:00:00Z",
                           "9999-12-31T23:59:59.999999Z", "2024-02-29T12:00:00.5+05:30"}) {
    const NewEvent e = with_timestamp(text);
    const auto result = store.rebase(++seq, {e});
    ASSERT_TRUE(std::holds_alternative<Ok>(result)) << text;
    EXPECT_EQ(store.event(seq)->timestamp, *e.timestamp) << text;
    // And the server read the same instant the client did.
    EXPECT_EQ(sql("SELECT extract(epoch FROM (coherence_event(" + std::to_string(seq) +
                  ") ->> 'timestamp')::timestamptz)::numeric * 1000000 = " +
                  std::to_string(e.timestamp->time_since_epoch().count())),
              "t")
        << text;
  }
  EXPECT_EQ(*with_timestamp("2300-01-01T00:00:00Z").timestamp,
            Timestamp{std::chrono::microseconds{10413792000LL * 1000000}});
  // What PostgreSQL prints beyond four-digit years is read exactly; what
  // the server's ISO 8601 input cannot take is refused before sending.
  const auto event_at = [](const std::string &timestamp) {
    return json::parse(R"({"seq_no":1,"source":"s","effect":{"reason":"r","trigger":["k","1"]},"timestamp":")" +
                       timestamp + "\"}")
        .get<Event>()
        .timestamp.time_since_epoch()
        .count();
  };
  EXPECT_EQ(event_at("12000-03-15T00:00:00.5+00:00"), 316522598400LL * 1000000 + 500000);
  EXPECT_EQ(event_at("0044-03-15T12:00:00+00:00 BC"), -63517780800LL * 1000000);
  EXPECT_EQ(event_at("294247-01-10T04:00:54.775807+00:00"), std::numeric_limits<std::int64_t>::max());
  EXPECT_THROW(event_at("294247-01-10T04:00:54.775808+00:00"), std::invalid_argument);
  EXPECT_THROW(event_at("294276-12-31T00:00:00+00:00"), std::invalid_argument);
  for (const char *beyond : {"12000-03-15T00:00:00Z", "0044-03-15T12:00:00Z BC"}) {
    NewEvent far = action("a", {"book", "1"});
    far.timestamp = Timestamp{std::chrono::microseconds{event_at(beyond)}};
    EXPECT_THROW((void)store.rebase(seq + 1, {far}), std::invalid_argument) << beyond;
  }
  NewEvent too_early = action("a", {"book", "1"});
  too_early.timestamp = Timestamp::min();
  EXPECT_THROW((void)store.rebase(seq + 1, {too_early}), std::invalid_argument);
  EXPECT_EQ(store.seq_no(), seq);
}

// Defect: a numeric id became nlohmann's dump(): ["book", 1e2] was "100.0"
// in the client and "100" on the server, two aggregates.
TEST_F(StoreTest, NumericIdsAreTheServersIntegerText) {
  const auto aggregate_of = [](const std::string &id) {
    return json::parse(R"(["book", )" + id + "]").get<Identity>().id;
  };
  EXPECT_EQ(aggregate_of("1e2"), "100");
  EXPECT_EQ(aggregate_of("100.0"), "100");
  EXPECT_EQ(aggregate_of("-7"), "-7");
  EXPECT_EQ(aggregate_of("18446744073709551615"), "18446744073709551615");
  for (const char *bad : {"1.5", "1e300", "12345678901234567890123"})
    EXPECT_THROW(aggregate_of(bad), std::invalid_argument) << bad;
  // The server agrees: what SQL stores under ["book", 1e2] conflicts with
  // the client's ["book", 1e2].
  sql(R"(SELECT coherence_rebase(1, '[{"source":"sql","action":{"reason":"r","actor":["u","a"],)"
      R"("aggregate":["book",1e2],"patch":{"assoc":{"x":1}}}}]'))");
  EXPECT_EQ(std::get<Action>(store.event(1)->body).aggregate, (Identity{"book", "100"}));
  const auto numeric = json::parse(R"({"source":"s","action":{"reason":"r","actor":["u","a"],)"
                                   R"("aggregate":["book",1e2],"patch":{"assoc":{"x":2}}}})")
                           .get<NewEvent>();
  const auto result = store.rebase(1, {numeric});
  ASSERT_TRUE(std::holds_alternative<Conflict>(result));
  EXPECT_EQ(std::get<Conflict>(result).theirs.seq_no, 1);
}

TEST_F(StoreTest, ValueTypesCompareWithNotEqualAndStartInitialised) {
  EXPECT_TRUE((Identity{"a", "1"} != Identity{"a", "2"}));
  EXPECT_FALSE((Identity{"a", "1"} != Identity{"a", "1"}));
  EXPECT_TRUE(action("a", {"b", "1"}) != action("a", {"b", "2"}));
  EXPECT_TRUE((Ok{{}, true} != Ok{{}, false}));
  EXPECT_TRUE((InvalidSeqNo{1} != InvalidSeqNo{2}));
  const Event event;
  EXPECT_EQ(event.seq_no, 0);
  EXPECT_EQ(event.timestamp.time_since_epoch().count(), 0);
  EXPECT_EQ(InvalidSeqNo{}.next_seq_no, 0);
  EXPECT_EQ(AggregateState{}.base, 1);
}

// The calls name the extension's schema, found once, so search_path does
// not matter; without the extension the error says what to do.
TEST_F(StoreTest, CallsDoNotDependOnSearchPath) {
  sql("CREATE SCHEMA elsewhere");
  TestDatabase other{false};
  {
    pqxx::connection admin{other.conninfo()};
    pqxx::nontransaction tx{admin};
    compat::exec(tx, "CREATE SCHEMA events");
    compat::exec(tx, "CREATE EXTENSION coherence SCHEMA events");
  }
  pqxx::connection elsewhere{other.conninfo("options=-csearch_path=nothing_here")};
  Store events{elsewhere};
  EXPECT_OK(events.rebase(1, {action("a", {"book", "1"})}));
  EXPECT_EQ(events.seq_no(), 1);
  EXPECT_TRUE(events.event(1));
  EXPECT_EQ(events.stream(0, [](const Event &) {}), 1u);
  EXPECT_EQ(aggregate(elsewhere, {"book", "1"}).state, (json{{"x", 1}}));
  TestDatabase bare{false};
  pqxx::connection bare_conn{bare.conninfo()};
  try {
    (void)Store{bare_conn}.seq_no();
    FAIL() << "expected NotInstalled";
  } catch (const NotInstalled &e) {
    EXPECT_STREQ(e.what(),
                 "coherence: the coherence extension is not installed in this database (CREATE EXTENSION coherence)");
  }
}

TEST_F(StoreTest, AggregateAtASeqNoAndTypedState) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"}, "stock", 10), action("a", {"book", "2"}),
                             action("a", {"book", "1"}, "stock", 9)}));
  const AggregateState then = aggregate(conn, {"book", "1"}, 2);
  EXPECT_EQ(then.state, (json{{"stock", 10}}));
  EXPECT_EQ(then.base, 3);
  // Appending on the historical state conflicts with what came after it.
  const auto stale = store.rebase(then.base, {action("b", {"book", "1"}, "stock", 11)});
  ASSERT_TRUE(std::holds_alternative<Conflict>(stale));
  EXPECT_EQ(std::get<Conflict>(stale).theirs.seq_no, 3);
  EXPECT_EQ(aggregate(conn, {"book", "1"}, 0).state, std::nullopt);
  EXPECT_EQ(aggregate(conn, {"book", "1"}, 99).base, 4);
  // A struct of the user's through nlohmann's adl_serializer, both ways.
  struct Stock {
    int stock = 0;
  };
  const auto to = [](json &j, const Stock &s) { j = json{{"stock", s.stock}}; };
  json as_json;
  to(as_json, Stock{7});
  const Patch patch = Patch::assoc_object(as_json);
  EXPECT_EQ(patch.assoc, (std::vector<std::pair<Path, json>>{{{"stock"}, 7}}));
  EXPECT_THROW(Patch::assoc_object(json::array()), std::invalid_argument);
}

// Issue 12: ids are sent, returned, and a repeated history is a duplicate.
TEST_F(StoreTest, EventIdsMakeARepeatedAppendADuplicate) {
  NewEvent first = action("a", {"book", "1"}), second = effect({"key", "1"});
  first.id = new_event_id();
  second.id = new_event_id();
  EXPECT_EQ(first.id->size(), 36u);
  EXPECT_NE(first.id, second.id);
  EXPECT_EQ((*first.id)[14], '4');  // version 4
  EXPECT_EQ(json(first).get<NewEvent>(), first);
  const auto stored = store.rebase(1, {first, second});
  ASSERT_TRUE(std::holds_alternative<Ok>(stored)) << json(stored).dump();
  EXPECT_FALSE(std::get<Ok>(stored).duplicate);
  EXPECT_EQ(std::get<Ok>(stored).events[0].id, first.id);
  EXPECT_EQ(store.event(2)->id, second.id);
  std::vector<Event> streamed;
  store.stream(0, [&](const Event &e) { streamed.push_back(e); });
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].id, first.id);
  EXPECT_OK(store.rebase(3, {action("b", {"book", "2"})}));
  const auto again = store.rebase(1, {first, second});
  ASSERT_TRUE(std::holds_alternative<Ok>(again)) << json(again).dump();
  EXPECT_TRUE(std::get<Ok>(again).duplicate);
  EXPECT_EQ(seq_nos(std::get<Ok>(again).events), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(store.seq_no(), 3);
  // The same id with other content is an error naming it.
  NewEvent changed = first;
  std::get<Action>(changed.body).reason = "other";
  try {
    (void)store.rebase(4, {changed});
    FAIL() << "expected 23505";
  } catch (const pqxx::sql_error &e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_NE(std::string(e.what()).find("history[0].id"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, LostConnectionIsBrokenConnection) {
  store.seq_no();
  EXPECT_EQ(sql("SELECT pg_terminate_backend(" + std::to_string(conn.backendpid()) + ")"), "t");
  EXPECT_THROW(store.seq_no(), pqxx::broken_connection);
}

}  // namespace
}  // namespace coherence::test
