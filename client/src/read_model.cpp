// Read models: aggregate state, the execute loop and Projector.
#include "follower.hpp"
#include "internal.hpp"
#include "pqxx_compat.hpp"

#include <algorithm>
#include <set>
#include <thread>

namespace coherence {

using nlohmann::json;

namespace {

// The advisory lock key's first half, shared by all projectors; the second
// half is hashtext(name). Two int4 keys (objsubid 2 in pg_locks) never clash
// with locks taken with one bigint key.
constexpr const char *lock_namespace = "coherence.projector";

// A Projector's backoff between windows that failed to serialize.
constexpr std::chrono::milliseconds window_retry_initial{2}, window_retry_max{1000};

// SQLSTATE 40001 and 40P01: the transaction lost a race and may simply be
// run again.
bool retryable(const std::exception_ptr &error) {
  try {
    std::rethrow_exception(error);
  } catch (const pqxx::serialization_failure &) {
    return true;
  } catch (const pqxx::deadlock_detected &) {
    return true;
  } catch (...) {
    return false;
  }
}

// Whether a failure means `conn` is gone (the outcome of a COMMIT then
// unknown): libpqxx reports it as broken_connection, in_doubt_error, or an
// sql_error such as 57P01 after which the connection is closed.
bool connection_lost(pqxx::connection &conn, const std::exception_ptr &error) {
  try {
    std::rethrow_exception(error);
  } catch (const pqxx::broken_connection &) {
    return true;
  } catch (const pqxx::in_doubt_error &) {
    return true;
  } catch (const pqxx::failure &) {
    return !conn.is_open();
  } catch (...) {
    return false;
  }
}

}  // namespace

// One statement, so the state and the base come from the same snapshot.
AggregateState aggregate(pqxx::transaction_base &tx, const Identity &aggregate, std::optional<std::int64_t> at_seq_no) {
  const std::string prefix = internal::installation(tx).prefix;
  // The seq_no is an integer, so it can be written into the statement.
  const std::string at = at_seq_no ? std::to_string(*at_seq_no) + "::bigint" : "NULL::bigint";
  const pqxx::result r = compat::exec(tx,
                                      "SELECT " + prefix + "coherence_aggregate($1, $2, " + at + "), least(" + at +
                                          ", " + prefix + "coherence_seq_no()) + 1",
                                      aggregate.kind, aggregate.id);
  AggregateState result{std::nullopt, r[0][1].as<std::int64_t>()};
  if (!r[0][0].is_null()) result.state = json::parse(compat::text(r[0][0]));
  return result;
}

// Its own read-only transaction.
AggregateState aggregate(pqxx::connection &conn, const Identity &aggregate, std::optional<std::int64_t> at_seq_no) {
  pqxx::read_transaction tx{conn};
  AggregateState result = coherence::aggregate(tx, aggregate, at_seq_no);
  tx.commit();
  return result;
}

// Lookup, operate, write; a conflict or a lost race starts over after a
// backoff, a lost connection during the write re-sends the same history.
RebaseResult execute(pqxx::connection &conn, const Identity &aggregate, const Operate &operate,
                     const ExecuteOptions &options) {
  if (options.max_attempts < 1) throw std::invalid_argument("coherence: execute needs max_attempts >= 1");
  int attempt = 1;
  // Sleeps before the next attempt, or rethrows once they are used up.
  const auto next_attempt = [&](const std::exception_ptr &error) {
    if (attempt == options.max_attempts) std::rethrow_exception(error);
    std::this_thread::sleep_for(internal::backoff(attempt++, options.initial_backoff, options.max_backoff, true));
  };
  // Reopens a lost connection; a failure to do so uses an attempt too.
  const auto reconnect = [&] {
    for (;;) {
      try {
        compat::reconnect(conn);
        return;
      } catch (const pqxx::broken_connection &) {
        next_attempt(std::current_exception());
      }
    }
  };
  for (;;) {
    AggregateState read;
    try {
      read = coherence::aggregate(conn, aggregate);
    } catch (const pqxx::failure &) {
      const std::exception_ptr error = std::current_exception();
      const bool lost = connection_lost(conn, error);
      if (!lost && !retryable(error)) throw;
      next_attempt(error);
      if (lost) reconnect();
      continue;
    }
    std::vector<NewEvent> events = operate(read.state);
    if (events.empty()) return Ok{};
    for (NewEvent &event : events)
      if (!event.id) event.id = new_event_id();
    std::optional<RebaseResult> result;
    bool lost_race = false;
    while (!result && !lost_race) {
      try {
        pqxx::work tx{conn};
        RebaseResult answer = rebase(tx, read.base, events);
        tx.commit();
        result = std::move(answer);
      } catch (const pqxx::failure &) {
        const std::exception_ptr error = std::current_exception();
        const bool lost = connection_lost(conn, error);
        if (!lost && !retryable(error)) throw;
        next_attempt(error);
        // Lost: the same ids tell the server whether it was stored. A lost
        // race wrote nothing: look up again.
        if (lost)
          reconnect();
        else
          lost_race = true;
      }
    }
    if (lost_race) continue;
    const auto *conflict = std::get_if<Conflict>(&*result);
    if (!conflict) return std::move(*result);
    if (options.on_conflict) options.on_conflict(*conflict);
    if (attempt == options.max_attempts) return std::move(*result);
    std::this_thread::sleep_for(internal::backoff(attempt++, options.initial_backoff, options.max_backoff, true));
  }
}

// Everything a running projector touches, behind one pointer so the
// Projector itself is movable.
struct Projector::State {
  std::string name;
  std::string conninfo;
  Handler on_event;
  Reset on_reset;
  ProjectorOptions options;
  internal::Follower follower;
  std::atomic<std::int64_t> checkpoint{0};
  bool locked_before = false;                       // a later lock() is a reconnection
  std::unique_ptr<pqxx::connection> stream_conn;   // with options.stream_conninfo

  State(std::string name_, std::string conninfo_, Handler on_event_, Reset on_reset_, ProjectorOptions options_)
      : name(std::move(name_)),
        conninfo(std::move(conninfo_)),
        on_event(std::move(on_event_)),
        on_reset(std::move(on_reset_)),
        options(std::move(options_)),
        follower(options) {}

  void lock(pqxx::connection &conn);
  bool apply_window(pqxx::connection &conn);
  void apply_windows(pqxx::connection &conn);
};

// Checks the name early: an empty one could never advance a checkpoint.
Projector::Projector(std::string name, std::string conninfo, Handler on_event, Reset on_reset,
                     ProjectorOptions options)
    : state_(std::make_unique<State>(std::move(name), std::move(conninfo), std::move(on_event), std::move(on_reset),
                                     std::move(options))) {
  if (state_->name.empty()) throw std::invalid_argument("coherence: a projector's name must not be empty");
  if (state_->options.max_window < 1)
    throw std::invalid_argument("coherence: a projector's max_window must be at least 1");
}

// Out of line: State is complete only here.
Projector::~Projector() = default;
Projector::Projector(Projector &&) noexcept = default;
Projector &Projector::operator=(Projector &&) noexcept = default;

// The lock first on every connection, then windows until caught up, then
// wait for more.
void Projector::run() {
  State &s = *state_;
  const bool separate_stream = s.options.stream_conninfo.has_value();
  s.follower.run(
      s.conninfo,
      [&s](pqxx::connection &conn) {
        s.lock(conn);
        if (s.options.stream_conninfo) s.stream_conn = std::make_unique<pqxx::connection>(*s.options.stream_conninfo);
      },
      [&s](pqxx::connection &conn) { s.apply_windows(conn); },
      // A standby replays what the primary's notification announced a
      // little later: poll it often instead of trusting the notification.
      separate_stream, [&s] { return !s.stream_conn || s.stream_conn->is_open(); });
}

// Async-signal-safe: only an atomic store and a write().
void Projector::stop() noexcept { state_->follower.stop(); }

// Readable from any thread while run() advances it.
std::int64_t Projector::checkpoint() const noexcept { return state_->checkpoint; }

const std::string &Projector::name() const noexcept { return state_->name; }

// Try-lock in a loop rather than a blocking pg_advisory_lock, so that stop()
// can end the wait.
void Projector::State::lock(pqxx::connection &conn) {
  // After a lost connection the old session may still hold the lock until
  // the server notices it is gone: then wait for it even in fail mode.
  const bool fail = options.when_locked == WhenLocked::fail && !locked_before;
  for (bool waiting = false;; waiting = true) {
    {
      pqxx::nontransaction tx{conn};
      if (compat::exec(tx, "SELECT pg_catalog.pg_try_advisory_lock(hashtext($1), hashtext($2))", lock_namespace,
                       name)[0][0]
              .as<bool>()) {
        locked_before = true;
        return;
      }
      if (fail) {
        // Who holds it, for the message; it may be gone already.
        const pqxx::result holder = compat::exec(
            tx,
            "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted "
            "AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
            "AND classid::bigint = hashtext($1)::bigint & 4294967295 "
            "AND objid::bigint = hashtext($2)::bigint & 4294967295",
            lock_namespace, name);
        throw ProjectorLocked("coherence: projector \"" + name + "\" is already running" +
                              (holder.empty() ? std::string{}
                                              : " (backend pid " + holder[0][0].as<std::string>() +
                                                    " holds its advisory lock)"));
      }
    }
    if (!waiting && options.on_lock_wait) options.on_lock_wait();
    if (!follower.pause(options.lock_retry_interval)) throw internal::Stopped{};
  }
}

// Windows until caught up; one that lost a race (40001, 40P01) is rolled
// back and applied again after a backoff.
void Projector::State::apply_windows(pqxx::connection &conn) {
  for (int failures = 0;;) {
    try {
      if (!apply_window(conn)) return;
      failures = 0;
    } catch (const internal::HandlerFailed &failed) {
      if (!retryable(failed.error)) throw;
      if (!follower.pause(internal::backoff(++failures, window_retry_initial, window_retry_max))) return;
    } catch (const pqxx::failure &) {
      if (!retryable(std::current_exception())) throw;
      if (!follower.pause(internal::backoff(++failures, window_retry_initial, window_retry_max))) return;
    }
  }
}

// One window; true when it stopped short of the head (max_window), so the
// next one should follow at once.
bool Projector::State::apply_window(pqxx::connection &conn) {
  compat::repeatable_read_rw tx{conn};
  const std::string prefix = internal::installation(tx).prefix;
  // The first statement takes the snapshot the whole window reads.
  std::int64_t from, head;
  std::optional<compat::repeatable_read_ro> stream_tx;
  if (!stream_conn) {
    const pqxx::result bounds =
        compat::exec(tx, "SELECT " + prefix + "coherence_checkpoint($1), " + prefix + "coherence_seq_no()", name);
    from = bounds[0][0].as<std::int64_t>() + 1;
    head = bounds[0][1].as<std::int64_t>();
  } else {
    from = compat::exec(tx, "SELECT " + prefix + "coherence_checkpoint($1)", name)[0][0].as<std::int64_t>() + 1;
    stream_tx.emplace(*stream_conn);
    head = seq_no(*stream_tx);
  }
  checkpoint = from - 1;
  if (head < from) {
    if (stream_tx) stream_tx->commit();
    tx.commit();  // nothing new: end the snapshot cleanly
    return false;
  }
  // Written so that a huge max_window cannot overflow.
  const std::int64_t to = head - (from - 1) > options.max_window ? from - 1 + options.max_window : head;
  // Replayed rows (all below `from`) come first, in seq_no order, so an
  // aggregate's reset precedes all of its rows in the window.
  std::set<std::pair<std::string, std::string>> reset;
  stream(
      stream_tx ? static_cast<pqxx::transaction_base &>(*stream_tx) : tx, from,
      [&](const Event &event) {
        if (follower.stopping()) throw internal::Stopped{};
        if (event.replayed && on_reset) {
          const Identity &aggregate = std::get<Action>(event.body).aggregate;
          if (reset.emplace(aggregate.kind, aggregate.id).second)
            internal::call_handler([&] { on_reset(tx, aggregate); });
        }
        internal::call_handler([&] { on_event(tx, event); });
      },
      to, options.kinds);
  if (stream_tx) stream_tx->commit();
  compat::exec(tx, "SELECT " + prefix + "coherence_advance($1, $2)", name, to);
  tx.commit();
  checkpoint = to;
  return to < head && !follower.stopping();
}

}  // namespace coherence
