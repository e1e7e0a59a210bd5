// The `coherence` CLI, run as a program: its output and exit codes.
#include "process.hpp"
#include "support.hpp"

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

namespace coherence::test {
namespace {

using nlohmann::json;

// Lines of text, without their newlines.
std::vector<std::string> lines(const std::string &text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A history of two actions, the first linked to encryption key 1.
const char *const two_books = R"([
  {"source": "cli", "timestamp": "2026-11-22T10:00:00.5Z",
   "action": {"reason": "create", "actor": ["user", "alice"], "aggregate": ["book", "Neuromancer"],
              "patch": {"assoc": {"genre": "SciFi"}}},
   "triggers": [["encryption-key", "1"]]},
  {"source": "cli",
   "action": {"reason": "create", "actor": ["user", "alice"], "aggregate": ["receipt", 1],
              "patch": {"assoc": [[["card", "no"], "xyz"]], "dissoc": ["draft"]}}}
])";

// The same aggregate as the first of two_books, from an actor who saw nothing.
const char *const bobs_neuromancer = R"([{"source": "cli", "action": {"reason": "create",
  "actor": ["user", "bob"], "aggregate": ["book", "Neuromancer"], "patch": {"assoc": {"genre": "Cyberpunk"}}}}])";

class CliTest : public StoreTest {
 protected:
  // Runs `coherence --db <test db> args...`.
  Outcome cli(std::vector<std::string> args, const std::string &stdin_text = "") {
    args.insert(args.begin(), {COHERENCE_CLI, "--db", db.conninfo()});
    return run_program(args, stdin_text);
  }
  // A file holding `text`, removed with the fixture.
  std::string file(const std::string &text) {
    const std::string path = ::testing::TempDir() + "coherence_cli_" + std::to_string(::getpid()) + ".json";
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const auto &path : files_) std::remove(path.c_str());
  }

 private:
  std::vector<std::string> files_;
};

TEST_F(CliTest, HelpAndUsageErrors) {
  const Outcome help = run_program({COHERENCE_CLI, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: coherence [--db CONNINFO] COMMAND"), std::string::npos);
  for (const std::vector<std::string> &args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"append"}, {"append", "--base", "x", "-"}, {"stream", "--dry"}, {"event"},
           {"event", "one"}, {"head", "extra"}, {"stream", "--from"}, {"head", "--dry=1"}}) {
    const Outcome o = cli(args);
    EXPECT_EQ(o.exit_code, 2) << testing::PrintToString(args);
    EXPECT_NE(o.err.find("Try 'coherence --help'"), std::string::npos) << o.err;
    EXPECT_EQ(o.out, "");
  }
}

TEST_F(CliTest, AppendThenReadBack) {
  const Outcome append = cli({"append", file(two_books)});
  ASSERT_EQ(append.exit_code, 0) << append.err;
  const auto answer = json::parse(append.out).get<RebaseResult>();
  ASSERT_TRUE(std::holds_alternative<Ok>(answer));
  const auto &events = std::get<Ok>(answer).events;
  EXPECT_EQ(seq_nos(events), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(events, (std::vector<Event>{*store.event(1), *store.event(2)}));
  EXPECT_EQ(std::get<Action>(events[1].body).aggregate, (Identity{"receipt", "1"}));

  EXPECT_EQ(cli({"head"}).out, "2\n");
  const Outcome one = cli({"event", "1"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(json::parse(one.out).get<Event>(), *store.event(1));

  const Outcome all = cli({"stream"});
  EXPECT_EQ(all.exit_code, 0);
  const auto streamed = lines(all.out);
  ASSERT_EQ(streamed.size(), 2u);
  EXPECT_EQ(json::parse(streamed[0]).get<Event>(), events[0]);
  EXPECT_EQ(json::parse(streamed[1]).get<Event>(), events[1]);
  EXPECT_EQ(lines(cli({"stream", "--from", "2"}).out).size(), 1u);
  EXPECT_EQ(lines(cli({"stream", "--to", "1"}).out).size(), 1u);
  EXPECT_EQ(lines(cli({"stream", "--kind", "receipt", "--kind=author"}).out).size(), 1u);

  // An effect on key 1 replays the book in a stream from after it.
  ASSERT_EQ(cli({"append", "-"}, R"([{"source":"k","effect":{"reason":"expired","trigger":["encryption-key","1"]}}])")
                .exit_code,
            0);
  const auto replay = lines(cli({"stream", "--from", "3"}).out);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(json::parse(replay[0])["seq_no"], 1);
  EXPECT_EQ(json::parse(replay[0])["replayed"], true);
}

TEST_F(CliTest, ConflictInvalidBaseAndDryHaveTheirExitCodes) {
  ASSERT_EQ(cli({"append", file(two_books)}).exit_code, 0);

  const Outcome conflict = cli({"append", "--base", "1", "-"}, bobs_neuromancer);
  EXPECT_EQ(conflict.exit_code, 3);
  const json answer = json::parse(conflict.out);
  EXPECT_EQ(answer["result"], "conflict");
  EXPECT_EQ(answer["conflict"]["theirs"]["seq_no"], 1);
  EXPECT_NE(conflict.err.find("conflict"), std::string::npos);
  EXPECT_EQ(store.seq_no(), 2);

  const Outcome invalid = cli({"append", "--base", "9", "-"}, bobs_neuromancer);
  EXPECT_EQ(invalid.exit_code, 4);
  EXPECT_EQ(json::parse(invalid.out), json::parse(R"({"result":"invalid-seq-no","next_seq_no":3})"));

  const Outcome dry = cli({"append", "--base", "1", "--resolved", "1", "--dry", "-"}, bobs_neuromancer);
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(json::parse(dry.out)["events"][0]["seq_no"], 3);
  EXPECT_EQ(store.seq_no(), 2);

  const Outcome resolved = cli({"append", "--base", "1", "--resolved", "1,2", "-"}, bobs_neuromancer);
  EXPECT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_EQ(store.seq_no(), 3);
}

TEST_F(CliTest, ErrorsExitOneWithAReadableMessage) {
  const Outcome not_json = cli({"append", "-"}, "[{");
  EXPECT_EQ(not_json.exit_code, 1);
  EXPECT_NE(not_json.err.find("is not valid JSON"), std::string::npos) << not_json.err;

  const Outcome empty_source = cli(
      {"append", "-"}, R"([{"source":"k","effect":{"reason":"r","trigger":["k","1"]}},{"source":"","effect":{"reason":"r","trigger":["k","1"]}}])");
  EXPECT_EQ(empty_source.exit_code, 1);
  EXPECT_NE(empty_source.err.find("history[1].source must not be empty"), std::string::npos) << empty_source.err;

  const Outcome unknown_key = cli({"append", "-"}, R"([{"source":"k","colour":"red","effect":{"reason":"r","trigger":["k","1"]}}])");
  EXPECT_EQ(unknown_key.exit_code, 1);
  EXPECT_NE(unknown_key.err.find("history[0]: an event has unknown key \"colour\""), std::string::npos)
      << unknown_key.err;

  const Outcome missing = cli({"event", "5"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("there is no event 5"), std::string::npos);

  TestDatabase bare{false};
  const Outcome server = run_program({COHERENCE_CLI, "--db", bare.conninfo(), "head"});
  EXPECT_EQ(server.exit_code, 1);
  EXPECT_NE(server.err.find("server error 42883"), std::string::npos) << server.err;

  const Outcome unreachable = run_program({COHERENCE_CLI, "--db", "dbname=coherence_no_such_database", "head"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("coherence_no_such_database"), std::string::npos) << unreachable.err;
  EXPECT_EQ(store.seq_no(), 0);
}

TEST_F(CliTest, DatabaseFromTheEnvironment) {
  store.rebase(1, {action("a", {"book", "1"})});
  // Only the child should see it: the fixture drops the database through
  // the original PGDATABASE.
  const std::string original = std::getenv("PGDATABASE") ? std::getenv("PGDATABASE") : "";
  ::setenv("PGDATABASE", db.name().c_str(), 1);
  const Outcome head = run_program({COHERENCE_CLI, "head"});
  ::setenv("PGDATABASE", original.c_str(), 1);
  EXPECT_EQ(head.exit_code, 0);
  EXPECT_EQ(head.out, "1\n");
}

TEST_F(CliTest, TailFollowsAppendsFromOtherConnectionsUntilSignalled) {
  store.rebase(1, {action("a", {"book", "1"})});
  Background tail({COHERENCE_CLI, "--db", db.conninfo(), "tail", "--from", "1"});
  EXPECT_EQ(json::parse(tail.read_line())["seq_no"], 1);  // catches up first
  store.rebase(2, {action("b", {"book", "2"})});
  const json live = json::parse(tail.read_line());
  EXPECT_EQ(live["seq_no"], 2);
  EXPECT_EQ(live["action"]["actor"], json::parse(R"(["user","b"])"));
  EXPECT_EQ(tail.stop(SIGTERM), 0) << tail.err();

  // Without --from it shows only what comes after the head it read at start;
  // its first window ends with a COMMIT on its own connection, after which an
  // append can only be news to it.
  Background fresh({COHERENCE_CLI, "--db", db.conninfo("application_name=coherence_fresh_tail"), "tail"});
  while (sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coherence_fresh_tail' "
             "AND query = 'COMMIT'") != "1")
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  store.rebase(3, {action("c", {"book", "3"})});
  EXPECT_EQ(json::parse(fresh.read_line())["seq_no"], 3);
  EXPECT_EQ(fresh.stop(SIGINT), 0) << fresh.err();
}

}  // namespace
}  // namespace coherence::test
