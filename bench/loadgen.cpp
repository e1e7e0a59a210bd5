// coherence-bench: measures coherence against plain PostgreSQL doing the same
// writes and reads without conflict checks, in one run, on one server.
//
// Method. Each scenario has a coherence side and a baseline side. The sides
// run in alternating short rounds (coherence, baseline, baseline, coherence,
// ...), each side with its own connections (one per client thread, opened
// once per scenario, statements prepared), and the rounds of a side are
// summed. Alternating cancels drift in the machine (other load, checkpoints,
// the store growing) that would otherwise favour whichever side ran first.
//
// Baseline. Schema `baseline` mirrors the extension's four tables with the
// same columns, primary keys, foreign keys, CHECKs and indexes, without the
// immutability triggers (they only fire on UPDATE/DELETE/TRUNCATE). Writes
// are one prepared statement per call (a data-modifying CTE so events and
// actions go in one round trip, unnest arrays for batches), autocommit like
// the coherence side. Its seq_nos come from one atomic counter in this
// process shared by all threads: globally increasing like coherence's, but
// free (no round trip, no lock), so the baseline is the optimistic limit.
// Reads are the plain SELECT ... JOIN ... ORDER BY seq_no producing the same
// columns as coherence_stream, fetched through the same cursor path as the
// C++ client.
//
// Usage: coherence-bench [--full] [--out DIR] [--only GROUPS]; the server
// comes from the PG* environment variables; --only runs some scenario groups
// (size, append, batch, hot, stream, aggregate), for profiling. Progress goes to stderr, the table to stdout, and
// results.csv, results.md and throughput.dat to DIR.
#include <coherence/coherence.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace {

using Clock = std::chrono::steady_clock;

// How long and how often each side runs; full mode also loads 10M events.
struct Options {
  bool full = false;
  std::string only;  // comma-separated scenario groups; empty = all
  double round_seconds = 1.0;
  int rounds = 3;
  std::string out_dir = "bench/results";
};

// Aggregates the append scenarios spread over, and the hot ones.
constexpr int kAggregates = 100000;
constexpr int kHotAggregates = 10;

// Seconds since `start`, for progress lines.
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One progress line on stderr, rewritten in place on a terminal so the
// screen shows where the run is without scrolling.
class Progress {
 public:
  Progress() : start_(Clock::now()), tty_(isatty(STDERR_FILENO) != 0) {}

  // Shows what is running now.
  void show(const std::string &what) {
    char stamp[32];
    const int elapsed = static_cast<int>(seconds_since(start_));
    std::snprintf(stamp, sizeof stamp, "[bench %02d:%02d] ", elapsed / 60, elapsed % 60);
    if (tty_)
      std::cerr << "\r\033[K" << stamp << what << std::flush;
    else
      std::cerr << stamp << what << '\n';
  }

  // Ends the in-place line so later output starts on a fresh one.
  void finish() {
    if (tty_) std::cerr << '\n';
  }

 private:
  Clock::time_point start_;
  bool tty_;
};

Progress progress;

// The connection string: everything from PG* except the benchmark database.
std::string conninfo() { return "dbname=coherence_bench application_name=coherence-bench"; }

// The baseline tables: the extension's four, same keys, FKs, CHECKs, indexes.
const char *const kBaselineSchema = R"SQL(
CREATE SCHEMA baseline;
CREATE TABLE baseline.events (
  seq_no bigint PRIMARY KEY CHECK (seq_no >= 1),
  "timestamp" timestamptz NOT NULL,
  source text NOT NULL CHECK (source <> ''));
CREATE TABLE baseline.actions (
  seq_no bigint PRIMARY KEY REFERENCES baseline.events,
  reason text NOT NULL CHECK (reason <> ''),
  actor_kind text NOT NULL CHECK (actor_kind <> ''),
  actor_id text NOT NULL CHECK (actor_id <> ''),
  aggregate_kind text NOT NULL CHECK (aggregate_kind <> ''),
  aggregate_id text NOT NULL CHECK (aggregate_id <> ''),
  patch jsonb NOT NULL);
CREATE INDEX ON baseline.actions (aggregate_kind, aggregate_id, seq_no);
CREATE TABLE baseline.effects (
  seq_no bigint PRIMARY KEY REFERENCES baseline.events,
  reason text NOT NULL CHECK (reason <> ''),
  trigger_kind text NOT NULL CHECK (trigger_kind <> ''),
  trigger_id text NOT NULL CHECK (trigger_id <> ''));
CREATE INDEX ON baseline.effects (trigger_kind, trigger_id, seq_no);
CREATE TABLE baseline.triggers (
  seq_no bigint NOT NULL REFERENCES baseline.actions,
  trigger_kind text NOT NULL CHECK (trigger_kind <> ''),
  trigger_id text NOT NULL CHECK (trigger_id <> ''),
  PRIMARY KEY (seq_no, trigger_kind, trigger_id));
CREATE INDEX ON baseline.triggers (trigger_kind, trigger_id, seq_no);
)SQL";

// The next baseline seq_no, shared by every baseline writer.
std::atomic<std::int64_t> baseline_next{1};

// Reserves n consecutive baseline seq_nos and returns the first.
std::int64_t reserve_baseline(std::int64_t n) { return baseline_next.fetch_add(n); }

// The patch every benchmark action carries (n varies, so no two are equal).
std::string patch_json(long n) {
  return "{\"assoc\": {\"n\": " + std::to_string(n) + ", \"note\": \"benchmark\"}}";
}

// What one call did: events written and conflicts met on the way.
struct Outcome {
  long events = 0;
  long conflicts = 0;
};

// One client thread's workload on its own connection.
class Worker {
 public:
  virtual ~Worker() = default;
  // Performs one call (including any retries) and says what it did.
  virtual Outcome call() = 0;
};

// Creates the worker for client thread i of a scenario.
using WorkerFactory = std::function<std::unique_ptr<Worker>(int)>;

// What a workload writes: batch actions per call on aggregates drawn from
// `aggregates`; `reread` reads the head before every attempt (hot mode).
struct Workload {
  int batch = 1;
  int aggregates = kAggregates;
  bool reread = false;
  bool ids = false;  // every event carries a fresh UUID (idempotent appends)
};

// Appends through coherence_rebase. The base is the head this client last
// saw plus one: the conflict check runs against everything others wrote
// since. On a conflict it re-reads the head and retries the same history.
class CoherenceWorker : public Worker {
 public:
  CoherenceWorker(int thread, Workload workload)
      : conn_(conninfo()), workload_(workload), rng_(1000 + thread), actor_("u" + std::to_string(thread)) {
    conn_.prepare("rebase", "SELECT coherence_rebase($1, $2::jsonb)");
    conn_.prepare("head", "SELECT coherence_seq_no()");
    base_ = head() + 1;
  }

  // One history of workload.batch actions, appended (with retries).
  Outcome call() override {
    const std::string history = build_history();
    Outcome outcome;
    for (;;) {
      if (workload_.reread) base_ = head() + 1;
      const std::string answer = rebase(history);
      // The jsonb text ends with "result": "...": keys sort by length first.
      if (answer.rfind("\"result\": \"ok\"") != std::string::npos) {
        const auto at = answer.rfind("\"seq_no\": ");
        base_ = std::stoll(answer.substr(at + 10)) + 1;
        outcome.events = workload_.batch;
        return outcome;
      }
      if (answer.rfind("\"result\": \"conflict\"") == std::string::npos)
        throw std::runtime_error("unexpected rebase answer: " + answer.substr(0, 200));
      ++outcome.conflicts;
      if (!workload_.reread) base_ = head() + 1;
    }
  }

 private:
  // The answer of coherence_rebase(base_, history), as JSON text.
  std::string rebase(const std::string &history) {
    pqxx::nontransaction tx{conn_};
    return tx.exec_prepared("rebase", base_, history)[0][0].c_str();
  }

  // The highest stored seq_no.
  std::int64_t head() {
    pqxx::nontransaction tx{conn_};
    return tx.exec_prepared("head")[0][0].as<std::int64_t>();
  }

  // The JSON history of the next call.
  std::string build_history() {
    std::string h = "[";
    for (int i = 0; i < workload_.batch; ++i) {
      const long aggregate = static_cast<long>(rng_() % workload_.aggregates);
      if (i) h += ", ";
      h += "{";
      if (workload_.ids) h += "\"id\": \"" + coherence::new_event_id() + "\", ";
      h += "\"source\": \"bench\", \"action\": {\"reason\": \"deposit\", \"actor\": [\"user\", \"" + actor_ +
           "\"], \"aggregate\": [\"account\", \"" + std::to_string(aggregate) + "\"], \"patch\": " +
           patch_json(++counter_) + "}}";
    }
    return h + "]";
  }

  pqxx::connection conn_;
  Workload workload_;
  std::mt19937_64 rng_;
  std::string actor_;
  std::int64_t base_ = 1;
  long counter_ = 0;
};

// Quotes one element of a PostgreSQL array literal.
std::string array_element(const std::string &value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Writes the same rows as CoherenceWorker with plain prepared INSERTs: no
// lock, no check, seq_nos from the shared counter. In hot mode it reads the
// head first, the same round trip the coherence side makes.
class BaselineWorker : public Worker {
 public:
  BaselineWorker(int thread, Workload workload)
      : conn_(conninfo()), workload_(workload), rng_(1000 + thread), actor_("u" + std::to_string(thread)) {
    conn_.prepare("insert1",
                  "WITH e AS (INSERT INTO baseline.events VALUES ($1, now(), 'bench'))"
                  " INSERT INTO baseline.actions VALUES ($1, 'deposit', 'user', $2, 'account', $3, $4::jsonb)");
    conn_.prepare("insertn",
                  "WITH e AS (INSERT INTO baseline.events SELECT s, now(), 'bench' FROM unnest($1::bigint[]) s)"
                  " INSERT INTO baseline.actions"
                  " SELECT s, 'deposit', 'user', $2, 'account', a, p"
                  "   FROM unnest($1::bigint[], $3::text[], $4::jsonb[]) AS u(s, a, p)");
    conn_.prepare("head", "SELECT max(seq_no) FROM baseline.events");
  }

  // One call writing workload.batch actions.
  Outcome call() override {
    pqxx::nontransaction tx{conn_};
    if (workload_.reread) tx.exec_prepared("head");
    if (workload_.batch == 1) {
      const long aggregate = static_cast<long>(rng_() % workload_.aggregates);
      tx.exec_prepared("insert1", reserve_baseline(1), actor_, std::to_string(aggregate), patch_json(++counter_));
    } else {
      const std::int64_t first = reserve_baseline(workload_.batch);
      std::string seq_nos = "{", aggregates = "{", patches = "{";
      for (int i = 0; i < workload_.batch; ++i) {
        const char *sep = i ? "," : "";
        seq_nos += sep + std::to_string(first + i);
        aggregates += sep + std::to_string(rng_() % workload_.aggregates);
        patches += sep + array_element(patch_json(++counter_));
      }
      tx.exec_prepared("insertn", seq_nos + "}", actor_, aggregates + "}", patches + "}");
    }
    Outcome outcome;
    outcome.events = workload_.batch;
    return outcome;
  }

 private:
  pqxx::connection conn_;
  Workload workload_;
  std::mt19937_64 rng_;
  std::string actor_;
  long counter_ = 0;
};

// Totals of one side of a scenario over all its rounds.
struct Tally {
  long events = 0;
  long calls = 0;
  long conflicts = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;

  // Events per second.
  double rate() const { return seconds > 0 ? events / seconds : 0; }

  // The q-quantile of call latency in milliseconds (NaN when none).
  double quantile(double q) {
    if (latencies_ms.empty()) return std::nan("");
    const auto k = std::min(latencies_ms.size() - 1, static_cast<std::size_t>(q * latencies_ms.size()));
    std::nth_element(latencies_ms.begin(), latencies_ms.begin() + k, latencies_ms.end());
    return latencies_ms[k];
  }
};

// Runs every worker on its own thread for `seconds`, adding to tally (when
// given: warm-up rounds pass none). Calls in flight at the deadline finish
// and count; the elapsed time runs until the last one returns.
void run_round(std::vector<std::unique_ptr<Worker>> &workers, double seconds, Tally *tally) {
  std::atomic<bool> stop{false};
  std::vector<Tally> local(workers.size());
  std::vector<std::exception_ptr> errors(workers.size());
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < workers.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          const auto t0 = Clock::now();
          const Outcome o = workers[i]->call();
          local[i].latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          local[i].events += o.events;
          local[i].conflicts += o.conflicts;
          ++local[i].calls;
        }
      } catch (...) {
        errors[i] = std::current_exception();
        stop = true;
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto &t : threads) t.join();
  for (auto &e : errors)
    if (e) std::rethrow_exception(e);
  if (!tally) return;
  tally->seconds += seconds_since(start);
  for (auto &l : local) {
    tally->events += l.events;
    tally->calls += l.calls;
    tally->conflicts += l.conflicts;
    tally->latencies_ms.insert(tally->latencies_ms.end(), l.latencies_ms.begin(), l.latencies_ms.end());
  }
}

// The two sides of a measured scenario.
struct Pair {
  Tally coherence, baseline;
};

// Opens `clients` workers of a side.
std::vector<std::unique_ptr<Worker>> open_workers(int clients, const WorkerFactory &make) {
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < clients; ++i) workers.push_back(make(i));
  return workers;
}

// Measures a workload on both sides in alternating rounds, after a short
// unrecorded warm-up of each (prepares plans, fills caches).
Pair measure(const std::string &label, int clients, const WorkerFactory &make_coherence,
             const WorkerFactory &make_baseline, const Options &opt) {
  auto coherence = open_workers(clients, make_coherence);
  auto baseline = open_workers(clients, make_baseline);
  Pair pair;
  progress.show(label + ": warm-up");
  run_round(coherence, 0.2, nullptr);
  run_round(baseline, 0.2, nullptr);
  for (int r = 0; r < opt.rounds; ++r) {
    const bool coherence_first = r % 2 == 0;
    for (int side = 0; side < 2; ++side) {
      const bool is_coherence = (side == 0) == coherence_first;
      progress.show(label + ": round " + std::to_string(r + 1) + "/" + std::to_string(opt.rounds) + " " +
                    (is_coherence ? "coherence" : "baseline"));
      run_round(is_coherence ? coherence : baseline, opt.round_seconds,
                is_coherence ? &pair.coherence : &pair.baseline);
    }
  }
  return pair;
}

// Measures a write workload on both sides.
Pair measure(const std::string &label, int clients, Workload workload, const Options &opt) {
  return measure(
      label, clients, [&](int i) { return std::make_unique<CoherenceWorker>(i, workload); },
      [&](int i) { return std::make_unique<BaselineWorker>(i, workload); }, opt);
}

// Reads one aggregate per call: its state through coherence_aggregate, or,
// for the baseline, every patch of it in order (what a client without the
// extension must fetch to fold the state itself).
class AggregateReader : public Worker {
 public:
  AggregateReader(bool coherence, std::string id) : conn_(conninfo()), id_(std::move(id)) {
    conn_.prepare("read", coherence ? "SELECT coherence_aggregate('ledger', $1)"
                                    : "SELECT patch FROM baseline.actions WHERE aggregate_kind = 'ledger'"
                                      " AND aggregate_id = $1 ORDER BY seq_no");
  }

  // One read; counts as one event.
  Outcome call() override {
    pqxx::nontransaction tx{conn_};
    tx.exec_prepared("read", id_);
    Outcome outcome;
    outcome.events = 1;
    return outcome;
  }

 private:
  pqxx::connection conn_;
  std::string id_;
};

// One line of the report.
struct Row {
  std::string scenario;
  int clients = 1;
  long stored = 0;
  std::string unit;
  double coherence = 0, baseline = 0;
  double coherence_p50 = std::nan(""), coherence_p99 = std::nan("");
  double baseline_p50 = std::nan(""), baseline_p99 = std::nan("");
  std::string notes;

  // coherence / baseline.
  double ratio() const { return baseline > 0 ? coherence / baseline : 0; }
};

// Builds a report row from a measured pair, with latency quantiles.
Row row_of(const std::string &scenario, int clients, long stored, Pair &pair, const std::string &notes = "") {
  Row row;
  row.scenario = scenario;
  row.clients = clients;
  row.stored = stored;
  row.unit = "events/s";
  row.coherence = pair.coherence.rate();
  row.baseline = pair.baseline.rate();
  row.coherence_p50 = pair.coherence.quantile(0.50);
  row.coherence_p99 = pair.coherence.quantile(0.99);
  row.baseline_p50 = pair.baseline.quantile(0.50);
  row.baseline_p99 = pair.baseline.quantile(0.99);
  row.notes = notes;
  return row;
}

// Formats a number with the given decimals, "-" for NaN.
std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The number of events in the coherence store.
long stored_events(pqxx::connection &conn) {
  pqxx::nontransaction tx{conn};
  return tx.exec("SELECT coherence_seq_no()")[0][0].as<long>();
}

// Runs one statement in its own transaction.
pqxx::result run(pqxx::connection &conn, const std::string &sql) {
  pqxx::work tx{conn};
  pqxx::result r = tx.exec(sql);
  tx.commit();
  return r;
}

// Appends n account actions to the coherence store through coherence_rebase
// in large histories built on the server, as fast as the extension allows.
void load_coherence_accounts(pqxx::connection &conn, long n, const std::string &label) {
  constexpr long batch = 10000;  // the longest history coherence_rebase takes
  for (long done = 0; done < n; done += batch) {
    progress.show(label + ": coherence " + std::to_string(done / 1000) + "k/" + std::to_string(n / 1000) + "k");
    const long k = std::min(batch, n - done);
    const auto r = run(conn,
                       "SELECT coherence_rebase(coherence_seq_no() + 1, (SELECT jsonb_agg(jsonb_build_object("
                       "'source', 'load', 'action', jsonb_build_object('reason', 'load', 'actor', '[\"user\", "
                       "\"loader\"]'::jsonb, 'aggregate', jsonb_build_array('account', (g % 100000)::text), "
                       "'patch', jsonb_build_object('assoc', jsonb_build_object('n', g, 'note', 'benchmark')))) "
                       "ORDER BY g) FROM generate_series(1, " +
                           std::to_string(k) + ") g)) ->> 'result'");
    if (std::string(r[0][0].c_str()) != "ok") throw std::runtime_error("loading coherence failed");
  }
}

// Inserts the same n account actions into the baseline tables.
void load_baseline_accounts(pqxx::connection &conn, long n, const std::string &label) {
  constexpr long batch = 100000;
  for (long done = 0; done < n; done += batch) {
    progress.show(label + ": baseline " + std::to_string(done / 1000) + "k/" + std::to_string(n / 1000) + "k");
    const long k = std::min(batch, n - done);
    const std::string first = std::to_string(reserve_baseline(k));
    const std::string last = first + " + " + std::to_string(k - 1);
    run(conn, "WITH e AS (INSERT INTO baseline.events SELECT g, now(), 'load' FROM generate_series(" + first + ", " +
                  last +
                  ") g) INSERT INTO baseline.actions SELECT g, 'load', 'user', 'loader', 'account', "
                  "(g % 100000)::text, jsonb_build_object('assoc', jsonb_build_object('n', g, 'note', "
                  "'benchmark')) FROM generate_series(" +
                  first + ", " + last + ") g");
  }
}

// Grows both stores to `target` events each with account actions (the
// measured rounds write different amounts to each side, so each side gets
// its own top-up), then vacuums so both start with fresh statistics.
void grow_to(pqxx::connection &conn, long target) {
  const std::string label = "loading " + std::to_string(target / 1000000) + "M";
  const auto start = Clock::now();
  load_coherence_accounts(conn, target - stored_events(conn), label);
  load_baseline_accounts(conn, target - run(conn, "SELECT count(*) FROM baseline.events")[0][0].as<long>(), label);
  progress.show(label + ": VACUUM ANALYZE");
  pqxx::nontransaction tx{conn};
  tx.exec("SET maintenance_work_mem = '512MB'");
  tx.exec("VACUUM ANALYZE");
  progress.show(label + ": done in " + fixed(seconds_since(start), 0) + " s");
}

// The replay-heavy window: docs aggregates with actions_per_doc actions
// each, every action linked to trigger ["key", doc % keys]; then one effect
// per key. Returns the [first, last] seq_nos of the effects (coherence).
struct ReplayWindow {
  std::int64_t from = 0, to = 0, baseline_from = 0, baseline_to = 0;
  long rows = 0;
};

// Loads the replay scenario's actions and effects into both stores.
ReplayWindow load_replay(pqxx::connection &conn) {
  constexpr long docs = 10000, per_doc = 5, keys = 1000, batch = 10000;
  const long actions = docs * per_doc;
  progress.show("loading replay window");
  for (long done = 0; done < actions; done += batch)
    run(conn,
        "SELECT coherence_rebase(coherence_seq_no() + 1, (SELECT jsonb_agg(jsonb_build_object("
        "'source', 'load', 'action', jsonb_build_object('reason', 'edit', 'actor', '[\"user\", \"loader\"]'::jsonb, "
        "'aggregate', jsonb_build_array('doc', (g % " +
            std::to_string(docs) +
            ")::text), 'patch', jsonb_build_object('assoc', jsonb_build_object('n', g))), "
            "'triggers', jsonb_build_array(jsonb_build_array('key', ((g % " +
            std::to_string(docs) + ") % " + std::to_string(keys) +
            ")::text))) ORDER BY g) FROM generate_series(" + std::to_string(done) + ", " +
            std::to_string(done + batch - 1) + ") g))");
  ReplayWindow w;
  w.from = stored_events(conn) + 1;
  run(conn,
      "SELECT coherence_rebase(coherence_seq_no() + 1, (SELECT jsonb_agg(jsonb_build_object('source', 'keystore', "
      "'effect', jsonb_build_object('reason', 'key-expired', 'trigger', jsonb_build_array('key', g::text))) "
      "ORDER BY g) FROM generate_series(0, " +
          std::to_string(keys - 1) + ") g))");
  w.to = stored_events(conn);

  const std::int64_t first = reserve_baseline(actions);
  const std::string f = std::to_string(first), l = std::to_string(first + actions - 1);
  const std::string doc = "((g - " + f + ") % " + std::to_string(docs) + ")";
  run(conn, "WITH e AS (INSERT INTO baseline.events SELECT g, now(), 'load' FROM generate_series(" + f + ", " + l +
                ") g), a AS (INSERT INTO baseline.actions SELECT g, 'edit', 'user', 'loader', 'doc', " + doc +
                "::text, jsonb_build_object('assoc', jsonb_build_object('n', g)) FROM generate_series(" + f + ", " +
                l + ") g) INSERT INTO baseline.triggers SELECT g, 'key', (" + doc + " % " + std::to_string(keys) +
                ")::text FROM generate_series(" + f + ", " + l + ") g");
  w.baseline_from = reserve_baseline(keys);
  w.baseline_to = w.baseline_from + keys - 1;
  const std::string ef = std::to_string(w.baseline_from), el = std::to_string(w.baseline_to);
  run(conn, "WITH e AS (INSERT INTO baseline.events SELECT g, now(), 'keystore' FROM generate_series(" + ef + ", " +
                el + ") g) INSERT INTO baseline.effects SELECT g, 'key-expired', 'key', (g - " + ef +
                ")::text FROM generate_series(" + ef + ", " + el + ") g");
  w.rows = actions;
  return w;
}

// Appends n actions on aggregate ["ledger", id] to both stores.
void load_ledger(pqxx::connection &conn, const std::string &id, long n) {
  constexpr long batch = 10000;  // the longest history coherence_rebase takes
  for (long done = 0; done < n; done += batch) {
    progress.show("loading aggregate " + id + ": " + std::to_string(done / 1000) + "k");
    const long k = std::min(batch, n - done);
    const auto r = run(conn,
                       "SELECT coherence_rebase(coherence_seq_no() + 1, (SELECT jsonb_agg(jsonb_build_object("
                       "'source', 'load', 'action', jsonb_build_object('reason', 'post', 'actor', '[\"user\", "
                       "\"loader\"]'::jsonb, 'aggregate', jsonb_build_array('ledger', " +
                           conn.quote(id) +
                           "), 'patch', jsonb_build_object('assoc', jsonb_build_object('n', g, 'k' || (g % 20), "
                           "g)))) ORDER BY g) FROM generate_series(1, " +
                           std::to_string(k) + ") g)) ->> 'result'");
    if (std::string(r[0][0].c_str()) != "ok") throw std::runtime_error("loading an aggregate failed");
    const std::string first = std::to_string(reserve_baseline(k));
    const std::string last = first + " + " + std::to_string(k - 1);
    run(conn, "WITH e AS (INSERT INTO baseline.events SELECT g, now(), 'load' FROM generate_series(" + first + ", " +
                  last + ") g) INSERT INTO baseline.actions SELECT g, 'post', 'user', 'loader', 'ledger', " +
                  conn.quote(id) +
                  ", jsonb_build_object('assoc', jsonb_build_object('n', g, 'k' || (g % 20), g)) "
                  "FROM generate_series(" +
                  first + ", " + last + ") g");
  }
}

// The columns the C++ client selects from coherence_stream.
const char *const kClientColumns =
    "SELECT seq_no, (extract(epoch FROM \"timestamp\") * 1000000)::bigint, source, reason, actor_kind, actor_id, "
    "aggregate_kind, aggregate_id, patch, triggers, replayed";

// The baseline's plain stream rows: actions joined with their event and
// their triggers as a [kind, id] array, by seq_no.
std::string baseline_stream_sql(const std::string &where, bool replayed) {
  return "SELECT a.seq_no, e.\"timestamp\", e.source, a.reason, a.actor_kind, a.actor_id, a.aggregate_kind, "
         "a.aggregate_id, a.patch, COALESCE((SELECT jsonb_agg(jsonb_build_array(t.trigger_kind, t.trigger_id) "
         "ORDER BY t.trigger_kind, t.trigger_id) FROM baseline.triggers t WHERE t.seq_no = a.seq_no), '[]'::jsonb) "
         "AS triggers, " +
         std::string(replayed ? "true" : "false") +
         " AS replayed FROM baseline.actions a JOIN baseline.events e ON e.seq_no = a.seq_no WHERE " + where +
         " ORDER BY a.seq_no";
}

// The baseline of a replay window: earlier actions of the aggregates that
// the window's effects affect.
std::string baseline_replay_sql(const ReplayWindow &w) {
  const std::string from = std::to_string(w.baseline_from), to = std::to_string(w.baseline_to);
  return baseline_stream_sql("a.seq_no < " + from +
                                 " AND (a.aggregate_kind, a.aggregate_id) IN (SELECT x.aggregate_kind, "
                                 "x.aggregate_id FROM baseline.effects f JOIN baseline.triggers t ON t.trigger_kind "
                                 "= f.trigger_kind AND t.trigger_id = f.trigger_id JOIN baseline.actions x ON "
                                 "x.seq_no = t.seq_no WHERE f.seq_no BETWEEN " +
                                 from + " AND " + to + ")",
                             true);
}

// An action event from a stream row, converted exactly as the client's
// Store::stream converts its rows (same columns, same JSON parsing).
coherence::Event event_of_row(const pqxx::row &row) {
  coherence::Event event;
  event.seq_no = row[0].as<std::int64_t>();
  event.timestamp = coherence::Timestamp{std::chrono::duration_cast<coherence::Timestamp::duration>(
      std::chrono::microseconds{row[1].as<std::int64_t>()})};
  event.source = row[2].as<std::string>();
  coherence::Action action;
  action.reason = row[3].as<std::string>();
  action.actor = coherence::Identity{row[4].as<std::string>(), row[5].as<std::string>()};
  action.aggregate = coherence::Identity{row[6].as<std::string>(), row[7].as<std::string>()};
  action.patch = nlohmann::json::parse(row[8].c_str()).get<coherence::Patch>();
  event.body = std::move(action);
  event.triggers = nlohmann::json::parse(row[9].c_str()).get<std::vector<coherence::Identity>>();
  event.replayed = row[10].as<bool>();
  return event;
}

// Streams `select` through a cursor in batches of 1000 rows, as the client
// does; `parse` converts every row to an Event, otherwise rows are only
// counted. Returns the number of rows.
long stream_cursor(pqxx::connection &conn, const std::string &select, bool parse) {
  pqxx::read_transaction tx{conn};
  tx.exec("DECLARE bench_stream NO SCROLL CURSOR FOR " + select);
  long rows = 0;
  std::int64_t checksum = 0;
  for (;;) {
    const pqxx::result batch = tx.exec("FETCH FORWARD 1000 FROM bench_stream");
    for (const auto &row : batch) {
      checksum += parse ? event_of_row(row).seq_no : static_cast<std::int64_t>(row[8].size());
      ++rows;
    }
    if (batch.size() < 1000) break;
  }
  tx.exec("CLOSE bench_stream");
  tx.commit();
  return checksum >= 0 ? rows : -1;
}

// What a stream scenario reads: the coherence window and the baseline query.
struct StreamCase {
  std::string label;
  std::int64_t from = 0;
  std::optional<std::int64_t> to;
  std::string baseline_sql;  // columns as the client selects them
  bool parse = true;         // through coherence::Store::stream (else raw rows)
};

// Streams both sides in alternating rounds; returns rows/s as a pair.
Row measure_stream(const std::string &scenario, const StreamCase &c, long stored, const Options &opt) {
  pqxx::connection conn{conninfo()};
  // Both sides read every row: without this the cursor's fast-start
  // planning picks a nested-loop replay plan that is 100x slower for the
  // baseline (coherence plans its queries inside the function, unaffected).
  pqxx::nontransaction(conn).exec("SET cursor_tuple_fraction = 1.0");
  coherence::Store store{conn};
  const std::string coherence_sql = std::string(kClientColumns) + " FROM coherence_stream(" + std::to_string(c.from) +
                                    ", " + (c.to ? std::to_string(*c.to) : "NULL") + ", NULL)";
  double seconds[2] = {0, 0};
  long rows[2] = {0, 0};
  const int rounds = std::max(2, opt.rounds - 1);
  for (int r = 0; r < rounds; ++r)
    for (int side = 0; side < 2; ++side) {
      const bool is_coherence = (side == 0) == (r % 2 == 0);
      progress.show(c.label + ": round " + std::to_string(r + 1) + "/" + std::to_string(rounds) + " " +
                    (is_coherence ? "coherence" : "baseline"));
      const auto start = Clock::now();
      long n;
      if (is_coherence && c.parse) {
        std::int64_t checksum = 0;
        n = static_cast<long>(store.stream(c.from, [&](const coherence::Event &e) { checksum += e.seq_no; }, c.to));
      } else {
        n = stream_cursor(conn, is_coherence ? coherence_sql : c.baseline_sql, c.parse);
      }
      seconds[is_coherence ? 0 : 1] += seconds_since(start);
      rows[is_coherence ? 0 : 1] += n;
    }
  if (rows[0] != rows[1])
    throw std::runtime_error(c.label + ": sides streamed different row counts: coherence " +
                             std::to_string(rows[0]) + ", baseline " + std::to_string(rows[1]));
  Row row;
  row.scenario = scenario;
  row.stored = stored;
  row.unit = "rows/s";
  row.coherence = rows[0] / seconds[0];
  row.baseline = rows[1] / seconds[1];
  row.notes = std::to_string(rows[0] / rounds) + " rows per pass";
  return row;
}

// The baseline SQL with the columns converted as the client converts them.
std::string as_client_columns(const std::string &select) {
  return std::string(kClientColumns) + " FROM (" + select + ") s";
}

// Prints and writes the report: results.csv, results.md, throughput.dat.
void write_report(const std::vector<Row> &rows, const Options &opt, const std::string &settings,
                  const std::string &header) {
  std::ofstream csv(opt.out_dir + "/results.csv");
  csv << "scenario,clients,stored_events,unit,coherence,baseline,ratio,coherence_p50_ms,coherence_p99_ms,"
         "baseline_p50_ms,baseline_p99_ms,notes\n";
  for (const auto &r : rows)
    csv << r.scenario << ',' << r.clients << ',' << r.stored << ',' << r.unit << ',' << fixed(r.coherence, 0) << ','
        << fixed(r.baseline, 0) << ',' << fixed(r.ratio(), 3) << ',' << fixed(r.coherence_p50, 3) << ','
        << fixed(r.coherence_p99, 3) << ',' << fixed(r.baseline_p50, 3) << ',' << fixed(r.baseline_p99, 3) << ",\""
        << r.notes << "\"\n";

  std::ostringstream table;
  table << "| Scenario | Clients | Stored events | coherence | baseline | ratio | p50 / p99 ms (coherence) | "
           "p50 / p99 ms (baseline) | Notes |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n";
  for (const auto &r : rows)
    table << "| " << r.scenario << " | " << r.clients << " | " << r.stored << " | " << fixed(r.coherence, 0) << ' '
          << r.unit << " | " << fixed(r.baseline, 0) << ' ' << r.unit << " | " << fixed(r.ratio(), 2) << " | "
          << fixed(r.coherence_p50, 2) << " / " << fixed(r.coherence_p99, 2) << " | " << fixed(r.baseline_p50, 2)
          << " / " << fixed(r.baseline_p99, 2) << " | " << r.notes << " |\n";
  std::ofstream md(opt.out_dir + "/results.md");
  md << header << "\n" << settings << "\n" << table.str();
  std::cout << "\n" << header << "\n" << table.str();

  std::ofstream dat(opt.out_dir + "/throughput.dat");
  dat << "# clients coherence_append baseline_append coherence_batch baseline_batch (events/s)\n";
  for (int clients : {1, 8, 32}) {
    std::string line = std::to_string(clients);
    for (const char *scenario : {"append", "batch append (100/call)"}) {
      std::string c = "NaN", b = "NaN";
      for (const auto &r : rows)
        if (r.scenario == scenario && r.clients == clients) {
          c = fixed(r.coherence, 0);
          b = fixed(r.baseline, 0);
        }
      line += " " + c + " " + b;
    }
    dat << line << "\n";
  }
}

// The machine and server this run measured, as Markdown.
std::string describe_run(pqxx::connection &conn, const Options &opt) {
  std::string cpu = "unknown CPU", mem = "?";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);)
    if (line.rfind("MemTotal:", 0) == 0) {
      mem = fixed(std::stod(line.substr(9)) / 1024 / 1024, 1) + " GiB";
      break;
    }
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));

  pqxx::nontransaction tx{conn};
  std::ostringstream out;
  out << "Run " << date << (opt.full ? ", full mode" : ", quick mode") << ": " << std::thread::hardware_concurrency()
      << " cores (" << cpu << "), " << mem << " RAM, " << tx.exec("SHOW server_version")[0][0].c_str()
      << ". Rounds: " << opt.rounds << " x " << opt.round_seconds
      << " s per side, sides alternating. Stream sessions set `cursor_tuple_fraction=1` (both sides)."
      << "\n\nPostgreSQL settings (identical for both sides):";
  for (const char *name : {"fsync", "synchronous_commit", "shared_buffers", "max_connections", "wal_level",
                           "max_wal_size", "checkpoint_timeout", "work_mem", "jit"})
    out << " `" << name << "=" << tx.exec(std::string("SHOW ") + name)[0][0].c_str() << "`";
  out << "\n";
  return out.str();
}

// Reads the command line.
Options parse_options(int argc, char **argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--full")
      opt.full = true;
    else if (arg == "--out" && i + 1 < argc)
      opt.out_dir = argv[++i];
    else if (arg == "--only" && i + 1 < argc)
      opt.only = argv[++i];
    else
      throw std::invalid_argument(
          "usage: coherence-bench [--full] [--out DIR] [--only size,append,batch,ids,hot,stream,aggregate]");
  }
  if (opt.full) {
    opt.rounds = 4;
    opt.round_seconds = 2.0;
  }
  return opt;
}

// Creates a fresh benchmark database with the extension and the baseline.
void create_database() {
  pqxx::connection admin{""};
  pqxx::nontransaction tx{admin};
  tx.exec("DROP DATABASE IF EXISTS coherence_bench");
  tx.exec("CREATE DATABASE coherence_bench");
  pqxx::connection conn{conninfo()};
  run(conn, "CREATE EXTENSION coherence");
  run(conn, kBaselineSchema);
}

// True when the scenario group is to run.
bool wanted(const Options &opt, const std::string &group) {
  return opt.only.empty() || ("," + opt.only + ",").find("," + group + ",") != std::string::npos;
}

// Runs every scenario in an order that lets the store grow once: appends to
// the empty store, then reads and appends at 1M stored events, then the
// write scenarios, then (full mode) appends at 10M.
int run_all(const Options &opt) {
  create_database();
  pqxx::connection conn{conninfo()};
  std::vector<Row> rows;

  double empty_rate = 0;
  if (wanted(opt, "size")) {
    Pair empty = measure("append, empty store", 1, Workload{}, opt);
    empty_rate = empty.coherence.rate();
    rows.push_back(row_of("append vs store size", 1, 0, empty));
  }
  // Reads and store sizes before the write scenarios, while both stores
  // hold the same events (the baseline writes more in equal time).
  const bool loaded = wanted(opt, "stream") || wanted(opt, "size") || wanted(opt, "aggregate");
  const ReplayWindow replay = loaded ? load_replay(conn) : ReplayWindow{};
  if (loaded) grow_to(conn, 1000000);
  const long stored = stored_events(conn);
  if (wanted(opt, "stream")) {
    StreamCase all{"stream all", 0, std::nullopt, as_client_columns(baseline_stream_sql("true", false)), true};
    rows.push_back(measure_stream("stream via Store::stream", all, stored, opt));
    all.label = "stream all, raw rows";
    all.parse = false;
    rows.push_back(measure_stream("stream, raw cursor rows", all, stored, opt));
    StreamCase window{"replay window", replay.from, replay.to, as_client_columns(baseline_replay_sql(replay)),
                      true};
    rows.push_back(measure_stream("stream replay window (1000 effects)", window, stored, opt));
  }
  if (wanted(opt, "size")) {
    Pair p = measure("append, 1M stored", 1, Workload{}, opt);
    rows.push_back(row_of("append vs store size", 1, stored, p,
                          "rate vs empty store " + fixed(p.coherence.rate() / empty_rate, 2)));
  }
  if (wanted(opt, "aggregate")) {
    for (const auto &[id, n] : {std::pair<std::string, long>{"small", 100}, {"big", 100000}}) {
      load_ledger(conn, id, n);
      Pair p = measure(
          "aggregate read, " + std::to_string(n) + " actions", 1,
          [&](int) { return std::make_unique<AggregateReader>(true, id); },
          [&](int) { return std::make_unique<AggregateReader>(false, id); }, opt);
      Row row = row_of("aggregate read (" + std::to_string(n) + " actions)", 1, stored_events(conn), p,
                       "baseline fetches every patch (no fold)");
      row.unit = "reads/s";
      rows.push_back(row);
    }
  }

  if (wanted(opt, "append"))
    for (int clients : {1, 8, 32}) {
      Pair p = measure("append " + std::to_string(clients) + " clients", clients, Workload{}, opt);
      rows.push_back(
          row_of("append", clients, stored_events(conn), p, clients > 1 ? "writers' lock serializes" : ""));
    }
  if (wanted(opt, "batch"))
    for (int clients : {1, 8}) {
      Pair p = measure("batch " + std::to_string(clients) + " clients", clients, Workload{100}, opt);
      rows.push_back(row_of("batch append (100/call)", clients, stored_events(conn), p));
    }
  if (wanted(opt, "ids"))
    for (const bool ids : {false, true}) {
      Workload workload;
      workload.ids = ids;
      Pair p = measure(ids ? "append with ids" : "append without ids", 1, workload, opt);
      rows.push_back(row_of(ids ? "append, events with ids" : "append, events without ids", 1,
                            stored_events(conn), p, "baseline has no ids"));
    }
  if (wanted(opt, "hot")) {
    Workload hot{1, kHotAggregates, true};
    Pair p = measure("hot aggregates", 32, hot, opt);
    const double attempts = p.coherence.calls + p.coherence.conflicts;
    rows.push_back(row_of("hot aggregates (10, re-read base, retry)", 32, stored_events(conn), p,
                          "conflict rate " + fixed(100.0 * p.coherence.conflicts / attempts, 1) +
                              "%, retries/success " +
                              fixed(static_cast<double>(p.coherence.conflicts) / p.coherence.calls, 2)));
  }
  if (opt.full && wanted(opt, "size")) {
    grow_to(conn, 10000000);
    const long big = stored_events(conn);
    Pair p = measure("append, 10M stored", 1, Workload{}, opt);
    rows.push_back(row_of("append vs store size", 1, big, p,
                          "rate vs empty store " + fixed(p.coherence.rate() / empty_rate, 2)));
  }
  progress.show("writing the report");
  progress.finish();
  write_report(rows, opt, describe_run(conn, opt), "## coherence vs plain PostgreSQL");
  return 0;
}

}  // namespace

// Entry point: runs the benchmark; errors end it with a message.
int main(int argc, char **argv) {
  try {
    return run_all(parse_options(argc, argv));
  } catch (const std::exception &e) {
    progress.finish();
    std::cerr << "coherence-bench: " << e.what() << "\n";
    return 1;
  }
}
