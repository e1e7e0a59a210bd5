// coherence — the command-line client: append a JSON history, stream or tail
// events as JSON lines, look up one event or the head of the store. Like
// psql and jq users expect: what it prints is the server's JSON unchanged,
// and it sends the user's JSON text unchanged.
//
// Exit codes: 0 ok, 1 error, 2 usage or connection failure (as psql),
// 3 conflict, 4 invalid base.
#include <coherence/coherence.hpp>

#include "internal.hpp"
#include "pqxx_compat.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

namespace {

using nlohmann::json;

constexpr int exit_ok = 0, exit_error = 1, exit_usage = 2, exit_conflict = 3, exit_invalid_base = 4;

// Attempts of an append whose events all have ids, when the connection
// breaks under it.
constexpr int append_attempts = 5;

// An error of ours, printed as is (it starts with "coherence: ").
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The whole content of FILE, or of stdin for "-".
std::string read_input(const std::string &file) {
  if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::error_code error;
  if (std::filesystem::is_directory(file, error))
    throw Failure("coherence: cannot read " + file + ": it is a directory, not a JSON file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Failure("coherence: cannot read " + file + ": " + std::strerror(errno));
  std::string text(std::istreambuf_iterator<char>(in), {});
  if (in.bad()) throw Failure("coherence: cannot read " + file + ": " + std::strerror(errno));
  return text;
}

// The rows of coherence_stream in the server's event form (as
// coherence_event(seq_no) gives it) plus "replayed", built by the server.
std::string stream_query(const std::string &prefix, std::int64_t from, std::optional<std::int64_t> to,
                         const std::vector<std::string> &kinds, pqxx::transaction_base &tx) {
  std::string kinds_sql = "NULL";
  if (!kinds.empty()) {
    kinds_sql = "ARRAY[";
    for (std::size_t i = 0; i < kinds.size(); ++i) kinds_sql += (i ? "," : "") + tx.quote(kinds[i]);
    kinds_sql += "]::text[]";
  }
  // to_jsonb(s) carries an `id` column when the extension has one.
  return "SELECT (jsonb_strip_nulls(jsonb_build_object('id', r -> 'id')) || jsonb_build_object("
         "'seq_no', r -> 'seq_no', 'timestamp', r -> 'timestamp', 'source', r -> 'source', "
         "'action', jsonb_build_object('reason', r -> 'reason', "
         "'actor', jsonb_build_array(r -> 'actor_kind', r -> 'actor_id'), "
         "'aggregate', jsonb_build_array(r -> 'aggregate_kind', r -> 'aggregate_id'), 'patch', r -> 'patch'), "
         "'triggers', r -> 'triggers', 'replayed', r -> 'replayed'))::text "
         "FROM " +
         prefix + "coherence_stream(" + std::to_string(from) + ", " + (to ? std::to_string(*to) : "NULL") + ", " +
         kinds_sql + ") s, LATERAL to_jsonb(s) r";
}

// Prints a stream's rows through a cursor, so memory stays flat.
void print_stream(pqxx::connection &conn, std::int64_t from, std::optional<std::int64_t> to,
                  const std::vector<std::string> &kinds) {
  pqxx::read_transaction tx{conn};
  const std::string prefix = coherence::internal::installation(tx).prefix;
  coherence::compat::exec(tx, "DECLARE coherence_cli NO SCROLL CURSOR FOR " +
                                  stream_query(prefix, from, to, kinds, tx));
  for (;;) {
    const pqxx::result batch = coherence::compat::exec(tx, "FETCH FORWARD 1000 FROM coherence_cli");
    for (const auto &row : batch) std::cout << coherence::compat::text(row[0]) << '\n';
    if (batch.size() < 1000) break;
  }
  std::cout.flush();
  tx.commit();
}

// What `append` was asked to do.
struct AppendRequest {
  std::string file;
  std::optional<std::int64_t> base;
  std::vector<std::int64_t> resolved;
  bool dry = false;
  bool ids = false;
};

// coherence append: the server's answer, printed as it is; the exit code
// tells which it was.
int append(const std::string &conninfo, const AppendRequest &request) {
  const std::string text = read_input(request.file);
  // Parsed only to check it and see where ids are missing; the text itself
  // goes to the server, so numbers keep every digit.
  json history;
  try {
    history = json::parse(text);
  } catch (const json::parse_error &e) {
    throw Failure("coherence: " + request.file + " is not valid JSON: " + e.what());
  }
  if (!history.is_array()) throw Failure("coherence: the history must be a JSON array of events");
  bool all_have_ids = !history.empty();
  for (const auto &event : history) all_have_ids = all_have_ids && event.is_object() && event.contains("id");
  const bool fill_ids = request.ids && !history.empty();
  std::string ids = "{";
  for (std::size_t i = 0; fill_ids && i < history.size(); ++i) ids += (i ? "," : "") + coherence::new_event_id();
  ids += "}";
  std::string resolved = "{";
  for (std::size_t i = 0; i < request.resolved.size(); ++i)
    resolved += (i ? "," : "") + std::to_string(request.resolved[i]);
  resolved += "}";
  // With every event identified, a retry after a lost connection is safe:
  // the server answers a stored history as a duplicate.
  const bool retry_safe = all_have_ids || fill_ids;
  std::optional<pqxx::connection> conn;
  conn.emplace(conninfo);
  for (int attempt = 1;; ++attempt) {
    try {
      pqxx::nontransaction tx{*conn};
      const std::string prefix = coherence::internal::installation(tx).prefix;
      const std::string base =
          request.base ? std::to_string(*request.base) + "::bigint" : prefix + "coherence_seq_no() + 1";
      const std::string events =
          fill_ids ? "(SELECT jsonb_agg(CASE WHEN jsonb_typeof(e) = 'object' AND NOT e ? 'id' "
                     "THEN e || jsonb_build_object('id', ($4::text[])[n]) ELSE e END ORDER BY n) "
                     "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, n))"
                   : "$1::jsonb";
      const std::string query = "SELECT " + prefix + "coherence_rebase(" + base + ", " + events +
                                ", $2::bigint[], $3)::text";
      const pqxx::result r = fill_ids ? coherence::compat::exec(tx, query, text, resolved, request.dry, ids)
                                      : coherence::compat::exec(tx, query, text, resolved, request.dry);
      const std::string answer{coherence::compat::text(r[0][0])};
      std::cout << answer << '\n';
      const json parsed = json::parse(answer);
      const std::string result = parsed.at("result").get<std::string>();
      if (result == "conflict") {
        std::cerr << "coherence: conflict: event " << parsed["conflict"]["ours"]["seq_no"]
                  << " of the history conflicts with stored event " << parsed["conflict"]["theirs"]["seq_no"]
                  << "; nothing was written\n";
        return exit_conflict;
      }
      if (result == "invalid-seq-no") {
        std::cerr << "coherence: the base is beyond the end of the store (the next seq_no is "
                  << parsed["next_seq_no"] << "); nothing was written\n";
        return exit_invalid_base;
      }
      return exit_ok;
    } catch (const pqxx::sql_error &) {
      if (conn->is_open()) throw;
      if (!retry_safe || attempt == append_attempts) throw;
    } catch (const pqxx::broken_connection &) {
      if (!retry_safe || attempt == append_attempts) throw;
    } catch (const pqxx::in_doubt_error &) {
      if (!retry_safe || attempt == append_attempts) throw;
    }
    std::cerr << "coherence: connection lost during the append; sending the same events (same ids) again\n";
    std::this_thread::sleep_for(std::chrono::milliseconds{100} * attempt);
    try {
      conn.reset();
      conn.emplace(conninfo);
    } catch (const pqxx::broken_connection &) {
      if (attempt + 1 == append_attempts) throw;
    }
  }
}

// coherence stream: one JSON line per row.
int stream(const std::string &conninfo, std::int64_t from, std::optional<std::int64_t> to,
           const std::vector<std::string> &kinds) {
  pqxx::connection conn{conninfo};
  print_stream(conn, from, to, kinds);
  return exit_ok;
}

// The running tail's subscription, for the signal handler.
coherence::Subscription *tailing = nullptr;

// SIGINT/SIGTERM end the tail cleanly; stop() is async-signal-safe.
extern "C" void stop_tail(int) {
  if (tailing) tailing->stop();
}

// coherence tail: follows until a signal. Each window's rows are printed
// at its end, as the server forms them (read again through a second
// connection: stored events never change), flushing so pipes see them.
int tail(const std::string &conninfo, std::optional<std::int64_t> from, const std::vector<std::string> &kinds) {
  std::optional<pqxx::connection> printer;
  printer.emplace(conninfo);
  if (!from) from = coherence::Store{*printer}.seq_no() + 1;
  coherence::SubscriptionOptions options;
  options.kinds = kinds;
  options.on_reconnect = [](const std::exception &e) {
    std::string what = e.what();
    while (!what.empty() && what.back() == '\n') what.pop_back();
    std::cerr << "coherence: connection lost (" << what << "); reconnecting" << std::endl;
  };
  options.on_reconnected = [] { std::cerr << "coherence: reconnected" << std::endl; };
  std::int64_t printed_to = *from;  // the next seq_no to print
  coherence::Subscription subscription{
      conninfo, *from, [](const coherence::Event &) {}, std::move(options),
      [&](std::int64_t next) {
        // The printer's connection may have broken with the subscription's.
        try {
          print_stream(*printer, printed_to, next - 1, kinds);
        } catch (const pqxx::broken_connection &) {
          printer.reset();
          printer.emplace(conninfo);
          print_stream(*printer, printed_to, next - 1, kinds);
        }
        printed_to = next;
      }};
  tailing = &subscription;
  struct sigaction action {};
  action.sa_handler = stop_tail;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  subscription.run();
  tailing = nullptr;
  return exit_ok;
}

// coherence event N: coherence_event(N) as the server prints it.
int event(const std::string &conninfo, std::int64_t seq_no) {
  pqxx::connection conn{conninfo};
  pqxx::read_transaction tx{conn};
  const std::string prefix = coherence::internal::installation(tx).prefix;
  const pqxx::result r = coherence::compat::exec(tx, "SELECT " + prefix + "coherence_event($1)::text", seq_no);
  if (r[0][0].is_null()) {
    std::cerr << "coherence: there is no event " << seq_no << '\n';
    return exit_error;
  }
  std::cout << coherence::compat::text(r[0][0]) << '\n';
  return exit_ok;
}

// coherence head.
int head(const std::string &conninfo) {
  pqxx::connection conn{conninfo};
  std::cout << coherence::Store{conn}.seq_no() << '\n';
  return exit_ok;
}

// A server error as psql shows it, on one line with its SQLSTATE, then its
// DETAIL and HINT lines: "coherence: ERROR 22023: history[0]... must ...".
void print_server_error(const pqxx::sql_error &e) {
  std::stringstream lines(e.what());
  std::string line, message;
  std::vector<std::string> extra;
  while (std::getline(lines, line)) {
    if (message.empty() && !line.empty()) {
      for (const char *severity : {"ERROR:  ", "FATAL:  ", "PANIC:  "})
        if (line.rfind(severity, 0) == 0) line.erase(0, std::strlen(severity));
      if (line.rfind("coherence: ", 0) == 0) line.erase(0, std::strlen("coherence: "));
      message = line;
    } else if (line.rfind("DETAIL:", 0) == 0 || line.rfind("HINT:", 0) == 0) {
      extra.push_back(line);
    }
  }
  std::cerr << "coherence: ERROR " << e.sqlstate() << ": " << message << '\n';
  for (const auto &l : extra) std::cerr << l << '\n';
}

// An exception's message without libpq's trailing newlines.
std::string trimmed(const std::exception &e) {
  std::string what = e.what();
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  return what;
}

}  // namespace

// Parses the command line with CLI11, runs the command, and maps every
// failure to a message on stderr and its exit code.
int main(int argc, char **argv) {
  CLI::App app{"coherence: the command-line client of the coherence event store.\n"
               "Prints the server's JSON; the connection comes from --db or the PG* environment.",
               "coherence"};
  app.set_version_flag("--version", std::string("coherence ") + COHERENCE_CLIENT_VERSION + " (libpqxx " +
                                        PQXX_VERSION + ")");
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 error, 2 usage or connection failure, 3 conflict (the answer is printed),\n"
             "4 invalid base (the answer is printed). `coherence help COMMAND` or `coherence COMMAND --help`\n"
             "describes a command.");
  std::string conninfo;
  app.add_option("--db", conninfo, "libpq connection string or URI (default: the PG* environment)");

  AppendRequest request;
  auto *append_cmd = app.add_subcommand("append", "Append the JSON array of events in FILE (- reads stdin)");
  append_cmd->add_option("FILE", request.file, "the history, a JSON array of events; - for stdin")->required();
  append_cmd->add_option("--base", request.base, "first seq_no not seen (default: the head + 1)");
  append_cmd->add_option("--resolved", request.resolved, "stored seq_nos that no longer conflict (N,N,...)")
      ->delimiter(',');
  append_cmd->add_flag("--dry", request.dry, "check and answer without writing");
  append_cmd->add_flag("--ids", request.ids,
                       "give events without an \"id\" a random UUID, so a lost connection is retried safely");
  append_cmd->footer("The text of FILE is sent unchanged; the server's answer is printed unchanged.\n"
                     "When every event has an id (or with --ids) an append whose connection breaks is\n"
                     "sent again; a history stored before comes back with \"duplicate\": true.");

  std::int64_t from = 0;
  std::optional<std::int64_t> to, tail_from;
  std::vector<std::string> kinds;
  auto *stream_cmd = app.add_subcommand("stream", "Print the rows of coherence_stream as JSON lines");
  stream_cmd->add_option("--from", from, "first seq_no (default 0)");
  stream_cmd->add_option("--to", to, "last seq_no (default: none)");
  stream_cmd->add_option("--kind", kinds, "only aggregates of this kind (repeatable)");

  auto *tail_cmd = app.add_subcommand("tail", "Print events as JSON lines and follow live until SIGINT/SIGTERM");
  tail_cmd->add_option("--from", tail_from, "first seq_no (default: only new events)");
  tail_cmd->add_option("--kind", kinds, "only aggregates of this kind (repeatable)");

  std::int64_t seq_no = 0;
  auto *event_cmd = app.add_subcommand("event", "Print one event as JSON");
  event_cmd->add_option("N", seq_no, "its seq_no")->required();

  auto *head_cmd = app.add_subcommand("head", "Print the highest seq_no (0 when empty)");

  std::string help_topic;
  auto *help_cmd = app.add_subcommand("help", "Describe coherence or one of its commands");
  help_cmd->add_option("COMMAND", help_topic, "the command");

  for (auto *command : app.get_subcommands([](CLI::App *) { return true; })) command->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::cerr << "coherence: " << e.what() << "\nTry 'coherence --help'.\n";
    return exit_usage;
  }

  try {
    if (help_cmd->parsed()) {
      // Formatted directly: App::help() would describe `help` itself, the
      // subcommand that was parsed.
      if (help_topic.empty()) {
        std::cout << app.get_formatter()->make_help(&app, "coherence", CLI::AppFormatMode::Normal);
        return exit_ok;
      }
      for (auto *command : app.get_subcommands([](CLI::App *) { return true; }))
        if (command->get_name() == help_topic) {
          std::cout << app.get_formatter()->make_help(command, "coherence " + help_topic, CLI::AppFormatMode::Normal);
          return exit_ok;
        }
      std::cerr << "coherence: there is no command " << help_topic << "\nTry 'coherence --help'.\n";
      return exit_usage;
    }
    if (append_cmd->parsed()) return append(conninfo, request);
    if (stream_cmd->parsed()) return stream(conninfo, from, to, kinds);
    if (tail_cmd->parsed()) return tail(conninfo, tail_from, kinds);
    if (event_cmd->parsed()) return event(conninfo, seq_no);
    if (head_cmd->parsed()) return head(conninfo);
    return exit_usage;
  } catch (const pqxx::sql_error &e) {
    print_server_error(e);
    return exit_error;
  } catch (const pqxx::broken_connection &e) {
    std::cerr << "coherence: " << trimmed(e) << '\n';
    return exit_usage;
  } catch (const pqxx::in_doubt_error &e) {
    std::cerr << "coherence: the connection broke during the commit: " << trimmed(e)
              << "\nThe append may or may not have been stored; give events ids (or use --ids) to retry safely.\n";
    return exit_usage;
  } catch (const std::exception &e) {
    std::cerr << trimmed(e) << '\n';
    return exit_error;
  }
}
