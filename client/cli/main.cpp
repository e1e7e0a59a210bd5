// coherence — the command-line client: append a JSON history, stream or tail
// events as JSON lines, look up one event or the head of the store.
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 conflict, 4 invalid base.
#include <coherence/coherence.hpp>

#include <charconv>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace {

using nlohmann::json;

constexpr int exit_ok = 0, exit_error = 1, exit_usage = 2, exit_conflict = 3, exit_invalid_base = 4;

constexpr const char *usage_text = R"(usage: coherence [--db CONNINFO] COMMAND [OPTIONS]

Commands:
  append [--base N] [--resolved N,N...] [--dry] FILE|-
      Append the JSON array of events in FILE (- reads stdin) on top of
      base N (default: after the current head) and print the answer as JSON.
      --resolved lists stored seq_nos that no longer conflict; --dry checks
      without writing.
  stream [--from N] [--to N] [--kind K]...
      Print the events of coherence_stream as JSON lines, replays included.
  tail [--from N] [--kind K]...
      Print events as JSON lines from seq_no N (default: only new ones) and
      keep following until interrupted (SIGINT or SIGTERM).
  event N
      Print event N as JSON.
  head
      Print the highest seq_no (0 when empty).

Options:
  --db CONNINFO  libpq connection string or URI; default: PG* environment
  -h, --help     show this help

Exit codes: 0 ok, 1 error, 2 usage, 3 conflict (printed as JSON),
4 invalid base (printed as JSON).
)";

// A mistake in the command line: reported with a hint, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The command line, split into the command, its options and operands.
struct CommandLine {
  std::string command;
  std::multimap<std::string, std::string> options;  // --kind repeats
  std::vector<std::string> operands;
  bool help = false;
};

// Options that take a value; every other option is a flag.
bool takes_value(const std::string &option) {
  return option == "--db" || option == "--base" || option == "--resolved" || option == "--from" ||
         option == "--to" || option == "--kind";
}

// Splits argv; accepts "--opt value" and "--opt=value" anywhere.
CommandLine parse_command_line(int argc, char **argv) {
  CommandLine line;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
    } else if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      std::string value;
      const auto eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg.resize(eq);
      }
      if (takes_value(arg) && eq == std::string::npos) {
        if (++i == argc) throw UsageError(arg + " needs a value");
        value = argv[i];
      } else if (!takes_value(arg) && eq != std::string::npos) {
        throw UsageError(arg + " takes no value");
      }
      line.options.emplace(arg, value);
    } else if (line.command.empty()) {
      line.command = arg;
    } else {
      line.operands.push_back(arg);
    }
  }
  return line;
}

// Rejects options the command does not know and a wrong number of operands.
void check_usage(const CommandLine &line, std::initializer_list<const char *> allowed, std::size_t operands) {
  for (const auto &[option, value] : line.options) {
    bool known = option == "--db";
    for (const char *a : allowed) known = known || option == a;
    if (!known) throw UsageError(line.command + " has no option " + option);
  }
  if (line.operands.size() != operands)
    throw UsageError(line.command + " takes " + std::to_string(operands) + " operand(s), got " +
                     std::to_string(line.operands.size()));
}

// A whole decimal int64, or a usage error naming `what`.
std::int64_t parse_int(const std::string &text, const std::string &what) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) throw UsageError(what + " must be an integer: " + text);
  return value;
}

// The value of a single-valued option, if given.
std::optional<std::int64_t> int_option(const CommandLine &line, const std::string &option) {
  const auto it = line.options.find(option);
  if (it == line.options.end()) return std::nullopt;
  if (line.options.count(option) > 1) throw UsageError(option + " given twice");
  return parse_int(it->second, option);
}

// Every value of a repeatable option, in order.
std::vector<std::string> all_values(const CommandLine &line, const std::string &option) {
  std::vector<std::string> values;
  const auto [first, last] = line.options.equal_range(option);
  for (auto it = first; it != last; ++it) values.push_back(it->second);
  return values;
}

// --resolved 1,2,3 as seq_nos.
std::vector<std::int64_t> resolved_option(const CommandLine &line) {
  std::vector<std::int64_t> resolved;
  for (const std::string &list : all_values(line, "--resolved")) {
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) resolved.push_back(parse_int(item, "--resolved"));
  }
  return resolved;
}

// The connection string: --db or, when empty, libpq's environment variables.
std::string conninfo(const CommandLine &line) {
  const auto it = line.options.find("--db");
  return it == line.options.end() ? std::string{} : it->second;
}

// The history in FILE or stdin, as typed events; errors name the index.
std::vector<coherence::NewEvent> read_history(const std::string &file) {
  json history;
  try {
    if (file == "-") {
      history = json::parse(std::cin);
    } else {
      std::ifstream in(file);
      if (!in) throw std::runtime_error("coherence: cannot read " + file);
      history = json::parse(in);
    }
  } catch (const json::parse_error &e) {
    throw std::invalid_argument("coherence: " + file + " is not valid JSON: " + e.what());
  }
  if (!history.is_array()) throw std::invalid_argument("coherence: the history must be a JSON array of events");
  std::vector<coherence::NewEvent> events;
  for (std::size_t i = 0; i < history.size(); ++i) {
    try {
      events.push_back(history[i].get<coherence::NewEvent>());
    } catch (const std::invalid_argument &e) {
      // "coherence: X" becomes "coherence: history[i]: X".
      const std::string what = e.what(), prefix = "coherence: ";
      throw std::invalid_argument(prefix + "history[" + std::to_string(i) + "]: " + what.substr(prefix.size()));
    }
  }
  return events;
}

// coherence append: prints the answer; the exit code tells which it was.
int append(const CommandLine &line) {
  check_usage(line, {"--base", "--resolved", "--dry"}, 1);
  const auto base_option = int_option(line, "--base");
  const auto resolved = resolved_option(line);
  const bool dry = line.options.count("--dry") > 0;
  const auto history = read_history(line.operands[0]);
  pqxx::connection conn{conninfo(line)};
  coherence::Store store{conn};
  const std::int64_t base = base_option ? *base_option : store.seq_no() + 1;
  const coherence::RebaseResult result = store.rebase(base, history, resolved, dry);
  std::cout << json(result).dump() << '\n';
  if (const auto *conflict = std::get_if<coherence::Conflict>(&result)) {
    std::cerr << "coherence: conflict: event " << conflict->ours.seq_no << " of the history conflicts with stored event "
              << conflict->theirs.seq_no << "; nothing was written\n";
    return exit_conflict;
  }
  if (const auto *invalid = std::get_if<coherence::InvalidSeqNo>(&result)) {
    std::cerr << "coherence: base " << base << " is beyond the end of the store (the next seq_no is "
              << invalid->next_seq_no << "); nothing was written\n";
    return exit_invalid_base;
  }
  return exit_ok;
}

// coherence stream: one JSON line per row.
int stream(const CommandLine &line) {
  check_usage(line, {"--from", "--to", "--kind"}, 0);
  const std::int64_t from = int_option(line, "--from").value_or(0);
  const auto to = int_option(line, "--to");
  pqxx::connection conn{conninfo(line)};
  coherence::Store store{conn};
  store.stream(from, [](const coherence::Event &e) { std::cout << json(e).dump() << '\n'; }, to,
               all_values(line, "--kind"));
  return exit_ok;
}

// The running tail's subscription, for the signal handler.
coherence::Subscription *tailing = nullptr;

// SIGINT/SIGTERM end the tail cleanly; stop() is async-signal-safe.
extern "C" void stop_tail(int) {
  if (tailing) tailing->stop();
}

// coherence tail: follows until a signal, flushing every line so pipes see
// events as they happen.
int tail(const CommandLine &line) {
  check_usage(line, {"--from", "--kind"}, 0);
  auto from = int_option(line, "--from");
  if (!from) {
    pqxx::connection conn{conninfo(line)};
    from = coherence::Store{conn}.seq_no() + 1;
  }
  coherence::SubscriptionOptions options;
  options.kinds = all_values(line, "--kind");
  options.on_reconnect = [](const std::exception &e) {
    std::cerr << "coherence: connection lost (" << e.what() << "); reconnecting" << std::endl;
  };
  coherence::Subscription subscription{
      conninfo(line), *from, [](const coherence::Event &e) { std::cout << json(e).dump() << std::endl; },
      std::move(options)};
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

// coherence event N.
int event(const CommandLine &line) {
  check_usage(line, {}, 1);
  const std::int64_t seq_no = parse_int(line.operands[0], "the seq_no");
  pqxx::connection conn{conninfo(line)};
  const auto found = coherence::Store{conn}.event(seq_no);
  if (!found) {
    std::cerr << "coherence: there is no event " << seq_no << '\n';
    return exit_error;
  }
  std::cout << json(*found).dump() << '\n';
  return exit_ok;
}

// coherence head.
int head(const CommandLine &line) {
  check_usage(line, {}, 0);
  pqxx::connection conn{conninfo(line)};
  std::cout << coherence::Store{conn}.seq_no() << '\n';
  return exit_ok;
}

// Runs the command named on the command line.
int dispatch(const CommandLine &line) {
  if (line.command == "append") return append(line);
  if (line.command == "stream") return stream(line);
  if (line.command == "tail") return tail(line);
  if (line.command == "event") return event(line);
  if (line.command == "head") return head(line);
  throw UsageError(line.command.empty() ? "no command given" : "unknown command " + line.command);
}

// An exception's message as one line: libpq's messages end in a newline,
// the library's do not.
std::string one_line(const std::exception &e) {
  std::string what = e.what();
  while (!what.empty() && what.back() == '\n') what.pop_back();
  return what;
}

}  // namespace

// Maps every failure to a message on stderr and its exit code.
int main(int argc, char **argv) {
  try {
    const CommandLine line = parse_command_line(argc, argv);
    if (line.help) {
      std::cout << usage_text;
      return exit_ok;
    }
    return dispatch(line);
  } catch (const UsageError &e) {
    std::cerr << "coherence: " << e.what() << "\nTry 'coherence --help'.\n";
    return exit_usage;
  } catch (const pqxx::sql_error &e) {
    std::cerr << "coherence: server error " << e.sqlstate() << ": " << one_line(e) << '\n';
    return exit_error;
  } catch (const pqxx::broken_connection &e) {
    std::cerr << "coherence: lost or could not open the database connection: " << one_line(e) << '\n';
    return exit_error;
  } catch (const std::exception &e) {
    std::cerr << one_line(e) << '\n';
    return exit_error;
  }
}
