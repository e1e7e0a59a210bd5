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
  // The server's JSON for an event, as coherence_event gives it, plus
  // "replayed" for stream rows.
  json server_event(std::int64_t seq_no, std::optional<bool> replayed = {}) {
    json event = json::parse(sql("SELECT coherence_event(" + std::to_string(seq_no) + ")"));
    if (replayed) event["replayed"] = *replayed;
    return event;
  }
  void TearDown() override {
    for (const auto &path : files_) std::remove(path.c_str());
  }

 private:
  std::vector<std::string> files_;
};

TEST_F(CliTest, HelpVersionAndUsageErrors) {
  const Outcome help = run_program({COHERENCE_CLI, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("coherence [OPTIONS] SUBCOMMAND"), std::string::npos) << help.out;
  for (const char *command : {"append", "stream", "tail", "event", "head", "help"})
    EXPECT_NE(help.out.find(command), std::string::npos) << command;
  const Outcome help_command = run_program({COHERENCE_CLI, "help"});
  EXPECT_EQ(help_command.exit_code, 0);
  EXPECT_EQ(help_command.out, help.out);
  const Outcome append_help = run_program({COHERENCE_CLI, "append", "--help"});
  EXPECT_EQ(append_help.exit_code, 0);
  EXPECT_NE(append_help.out.find("--ids"), std::string::npos) << append_help.out;
  EXPECT_EQ(run_program({COHERENCE_CLI, "help", "append"}).out, append_help.out);
  EXPECT_EQ(run_program({COHERENCE_CLI, "help", "frobnicate"}).exit_code, 2);
  const Outcome version = run_program({COHERENCE_CLI, "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("coherence 1.", 0), 0u) << version.out;
  EXPECT_NE(version.out.find("libpqxx " PQXX_VERSION), std::string::npos) << version.out;
  for (const std::vector<std::string> &args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"append"}, {"append", "--base", "x", "-"}, {"stream", "--dry"}, {"event"},
           {"event", "one"}, {"head", "extra"}, {"stream", "--from"}, {"head", "--dry=1"}}) {
    const Outcome o = cli(args);
    EXPECT_EQ(o.exit_code, 2) << testing::PrintToString(args);
    EXPECT_NE(o.err.find("Try 'coherence --help'"), std::string::npos) << o.err;
    EXPECT_EQ(o.out, "");
  }
  // After --, what looks like an option is an operand: here a file name.
  const Outcome operand = cli({"append", "--", "--base"});
  EXPECT_EQ(operand.exit_code, 1);
  EXPECT_NE(operand.err.find("cannot read --base"), std::string::npos) << operand.err;
}

// Defect: the CLI printed the client's rewritten JSON ({"assoc": {...}}
// came out as [[["genre"], ...]]). Every command prints the server's JSON.
TEST_F(CliTest, PrintsTheServersJsonUnchanged) {
  const Outcome append = cli({"append", file(two_books)});
  ASSERT_EQ(append.exit_code, 0) << append.err;
  const json answer = json::parse(append.out);
  EXPECT_EQ(answer["result"], "ok");
  ASSERT_EQ(answer["events"].size(), 2u);
  EXPECT_EQ(answer["events"][0], server_event(1));
  EXPECT_EQ(answer["events"][1], server_event(2));
  EXPECT_EQ(answer["events"][1]["action"]["aggregate"], json::parse(R"(["receipt", "1"])"));

  const Outcome one = cli({"event", "1"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.out, sql("SELECT coherence_event(1)::text") + "\n");
  EXPECT_EQ(json::parse(one.out)["action"]["patch"]["assoc"]["genre"], "SciFi");
  EXPECT_EQ(cli({"head"}).out, "2\n");

  const auto streamed = lines(cli({"stream"}).out);
  ASSERT_EQ(streamed.size(), 2u);
  EXPECT_EQ(json::parse(streamed[0]), server_event(1, false));
  EXPECT_EQ(json::parse(streamed[1]), server_event(2, false));
  EXPECT_EQ(lines(cli({"stream", "--from", "2"}).out).size(), 1u);
  EXPECT_EQ(lines(cli({"stream", "--to", "1"}).out).size(), 1u);
  EXPECT_EQ(lines(cli({"stream", "--kind", "receipt", "--kind=author"}).out).size(), 1u);

  // An effect on key 1 replays the book in a stream from after it.
  ASSERT_EQ(cli({"append", "-"}, R"([{"source":"k","effect":{"reason":"expired","trigger":["encryption-key","1"]}}])")
                .exit_code,
            0);
  const auto replay = lines(cli({"stream", "--from", "3"}).out);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(json::parse(replay[0]), server_event(1, true));
}

// Defect: the CLI parsed and re-serialized the history: ["book", 1e2] was
// sent as "100.0" (another aggregate than SQL's ["book", 100]) and patch
// numbers beyond 2^53 were rounded. The text now goes to the server as is.
TEST_F(CliTest, SendsTheJsonTextUnchanged) {
  const Outcome append = cli({"append", "-"}, R"([{"source": "cli", "action": {"reason": "r", "actor": ["u", "a"],
      "aggregate": ["book", 1e2], "patch": {"assoc": {"n": 12345678901234567890123, "f": 0.1000000000000000055511151231257827}}}}])");
  ASSERT_EQ(append.exit_code, 0) << append.err;
  EXPECT_EQ(sql("SELECT coherence_event(1) -> 'action' -> 'patch' -> 'assoc' ->> 'n'"), "12345678901234567890123");
  EXPECT_EQ(sql("SELECT coherence_event(1) -> 'action' -> 'patch' -> 'assoc' ->> 'f'"),
            "0.1000000000000000055511151231257827");
  // SQL's ["book", 100] is the same aggregate: its append conflicts.
  EXPECT_EQ(sql(R"(SELECT coherence_rebase(1, '[{"source":"sql","action":{"reason":"r","actor":["u","b"],)"
                R"("aggregate":["book",100],"patch":{"assoc":{"x":1}}}}]') ->> 'result')"),
            "conflict");
  EXPECT_NE(cli({"event", "1"}).out.find("12345678901234567890123"), std::string::npos);
}

TEST_F(CliTest, ConflictInvalidBaseAndDryHaveTheirExitCodes) {
  ASSERT_EQ(cli({"append", file(two_books)}).exit_code, 0);

  const Outcome conflict = cli({"append", "--base", "1", "-"}, bobs_neuromancer);
  EXPECT_EQ(conflict.exit_code, 3);
  const json answer = json::parse(conflict.out);
  EXPECT_EQ(answer["result"], "conflict");
  EXPECT_EQ(answer["conflict"]["theirs"], server_event(1));
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

TEST_F(CliTest, ErrorsArePrintedAsOneCleanLineWithTheirExitCode) {
  const Outcome not_json = cli({"append", "-"}, "[{");
  EXPECT_EQ(not_json.exit_code, 1);
  EXPECT_NE(not_json.err.find("is not valid JSON"), std::string::npos) << not_json.err;

  // The server judges the events; its error is one line with the SQLSTATE,
  // then its HINT.
  const Outcome bad_timestamp = cli(
      {"append", "-"}, R"([{"source":"k","timestamp":"yesterday","effect":{"reason":"r","trigger":["k","1"]}}])");
  EXPECT_EQ(bad_timestamp.exit_code, 1);
  const auto err = lines(bad_timestamp.err);
  ASSERT_GE(err.size(), 2u) << bad_timestamp.err;
  EXPECT_EQ(err[0].rfind("coherence: ERROR 22007: history[0].timestamp", 0), 0u) << bad_timestamp.err;
  EXPECT_EQ(err[1].rfind("HINT:", 0), 0u) << bad_timestamp.err;
  EXPECT_EQ(bad_timestamp.err.find("ERROR:  "), std::string::npos) << bad_timestamp.err;

  const Outcome empty_source = cli(
      {"append", "-"}, R"([{"source":"k","effect":{"reason":"r","trigger":["k","1"]}},{"source":"","effect":{"reason":"r","trigger":["k","1"]}}])");
  EXPECT_EQ(empty_source.exit_code, 1);
  EXPECT_EQ(empty_source.err.rfind("coherence: ERROR 22023: history[1].source", 0), 0u) << empty_source.err;

  const Outcome directory = cli({"append", ::testing::TempDir()});
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_NE(directory.err.find("is a directory"), std::string::npos) << directory.err;
  const Outcome missing_file = cli({"append", "/nonexistent/history.json"});
  EXPECT_EQ(missing_file.exit_code, 1);
  EXPECT_NE(missing_file.err.find("cannot read /nonexistent/history.json: No such file"), std::string::npos);

  const Outcome missing = cli({"event", "5"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("there is no event 5"), std::string::npos);

  TestDatabase bare{false};
  const Outcome not_installed = run_program({COHERENCE_CLI, "--db", bare.conninfo(), "head"});
  EXPECT_EQ(not_installed.exit_code, 1);
  EXPECT_EQ(not_installed.err,
            "coherence: the coherence extension is not installed in this database (CREATE EXTENSION coherence)\n");

  // Like psql, a connection that cannot be made exits 2.
  const Outcome unreachable = run_program({COHERENCE_CLI, "--db", "dbname=coherence_no_such_database", "head"});
  EXPECT_EQ(unreachable.exit_code, 2);
  EXPECT_EQ(unreachable.err.rfind("coherence: ", 0), 0u) << unreachable.err;
  EXPECT_NE(unreachable.err.find("coherence_no_such_database"), std::string::npos) << unreachable.err;
  EXPECT_EQ(store.seq_no(), 0);
}

// Issue 12: ids pass through, --ids fills the missing ones, and the same
// history sent again is the duplicate answer.
TEST_F(CliTest, IdsPassThroughAndIdsFillsTheMissingOnes) {
  const std::string given = "0B4E5F3A-1C2D-4E5F-8A9B-0C1D2E3F4A5B";
  const Outcome append = cli({"append", "--ids", "-"}, R"([{"id": ")" + given +
                                                           R"(", "source": "k", "effect": {"reason": "r", "trigger": ["k", "1"]}},
      {"source": "k", "effect": {"reason": "r", "trigger": ["k", "2"]}}])");
  ASSERT_EQ(append.exit_code, 0) << append.err;
  const json events = json::parse(append.out)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["id"], "0b4e5f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
  ASSERT_TRUE(events[1].contains("id"));
  EXPECT_EQ(events[1]["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(events[1], server_event(2));
  // A script retrying with the ids it got back is answered with the duplicate.
  json retry = json::array();
  for (const auto &event : events) {
    json input = event;
    input.erase("seq_no");
    input.erase("timestamp");
    retry.push_back(input);
  }
  const Outcome again = cli({"append", "--base", "1", "-"}, retry.dump());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["duplicate"], true);
  EXPECT_EQ(store.seq_no(), 2);
}

TEST_F(CliTest, DatabaseFromTheEnvironment) {
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
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
  EXPECT_OK(store.rebase(1, {action("a", {"book", "1"})}));
  Background tail({COHERENCE_CLI, "--db", db.conninfo(), "tail", "--from", "1"});
  EXPECT_EQ(json::parse(tail.read_line())["seq_no"], 1);  // catches up first
  EXPECT_OK(store.rebase(2, {action("b", {"book", "2"})}));
  const json live = json::parse(tail.read_line());
  EXPECT_EQ(live["seq_no"], 2);
  EXPECT_EQ(live["action"]["actor"], json::parse(R"(["user","b"])"));
  EXPECT_EQ(tail.stop(SIGTERM), 0) << tail.err();

  // Without --from it shows only what comes after the head it read at start;
  // its first window ends with a COMMIT on the subscription's connection
  // (the printing connection's last statement is a COMMIT too), after which
  // an append can only be news to it.
  Background fresh({COHERENCE_CLI, "--db", db.conninfo("application_name=coherence_fresh_tail"), "tail"});
  ASSERT_TRUE(wait_until([&] {
    return sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coherence_fresh_tail' "
               "AND query = 'COMMIT'") == "2";
  }));
  EXPECT_OK(store.rebase(3, {action("c", {"book", "3"})}));
  EXPECT_EQ(json::parse(fresh.read_line())["seq_no"], 3);
  EXPECT_EQ(fresh.stop(SIGINT), 0) << fresh.err();
}

}  // namespace
}  // namespace coherence::test
