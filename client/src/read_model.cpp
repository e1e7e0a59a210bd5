// Read models: aggregate state, the execute loop and Projector.
#include "follower.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <thread>

namespace coherence {

using nlohmann::json;

namespace {

// The advisory lock key's first half, shared by all projectors; the second
// half is hashtext(name). Two int4 keys (objsubid 2 in pg_locks) never clash
// with locks taken with one bigint key.
constexpr const char *lock_namespace = "coherence.projector";

// A random sleep in [0, min(max, initial * 2^(attempt-1))]: exponential
// backoff with full jitter, so colliding writers spread out.
std::chrono::microseconds backoff(int attempt, const ExecuteOptions &options) {
  thread_local std::minstd_rand random{std::random_device{}()};
  const auto max = std::chrono::duration_cast<std::chrono::microseconds>(options.max_backoff);
  auto cap = std::chrono::duration_cast<std::chrono::microseconds>(options.initial_backoff);
  for (int i = 1; i < attempt && cap < max; ++i) cap *= 2;
  cap = std::min(cap, max);
  std::uniform_int_distribution<std::int64_t> pick{0, std::max<std::int64_t>(cap.count(), 0)};
  return std::chrono::microseconds{pick(random)};
}

}  // namespace

// One statement, so the state and the base come from the same snapshot.
AggregateState aggregate(pqxx::transaction_base &tx, const Identity &aggregate) {
  const pqxx::row row =
      tx.exec_params1("SELECT coherence_aggregate($1, $2), coherence_seq_no() + 1", aggregate.kind, aggregate.id);
  AggregateState result{std::nullopt, row[1].as<std::int64_t>()};
  if (!row[0].is_null()) result.state = json::parse(row[0].c_str());
  return result;
}

// Its own read-only transaction.
AggregateState aggregate(pqxx::connection &conn, const Identity &aggregate) {
  pqxx::read_transaction tx{conn};
  AggregateState result = coherence::aggregate(tx, aggregate);
  tx.commit();
  return result;
}

// Lookup, operate, write; a conflict starts over after a backoff.
RebaseResult execute(pqxx::connection &conn, const Identity &aggregate, const Operate &operate,
                     const ExecuteOptions &options) {
  if (options.max_attempts < 1) throw std::invalid_argument("coherence: execute needs max_attempts >= 1");
  for (int attempt = 1;; ++attempt) {
    const AggregateState read = coherence::aggregate(conn, aggregate);
    const std::vector<NewEvent> events = operate(read.state);
    if (events.empty()) return Ok{};
    pqxx::work tx{conn};
    RebaseResult result = rebase(tx, read.base, events);
    tx.commit();
    const auto *conflict = std::get_if<Conflict>(&result);
    if (!conflict) return result;
    if (options.on_conflict) options.on_conflict(*conflict);
    if (attempt == options.max_attempts) return result;
    std::this_thread::sleep_for(backoff(attempt, options));
  }
}

// Checks the name early: an empty one could never advance a checkpoint.
Projector::Projector(std::string name, std::string conninfo, Handler on_event, Reset on_reset,
                     ProjectorOptions options)
    : name_(std::move(name)),
      conninfo_(std::move(conninfo)),
      on_event_(std::move(on_event)),
      on_reset_(std::move(on_reset)),
      options_(std::move(options)),
      follower_(std::make_unique<internal::Follower>(options_)) {
  if (name_.empty()) throw std::invalid_argument("coherence: a projector's name must not be empty");
  if (options_.max_window < 1) throw std::invalid_argument("coherence: a projector's max_window must be at least 1");
}

// Out of line: Follower is complete only here.
Projector::~Projector() = default;

// The lock first on every connection, then windows until caught up, then
// wait for more.
void Projector::run() {
  follower_->run(
      conninfo_, [this](pqxx::connection &conn) { lock(conn); },
      [this](pqxx::connection &conn) {
        while (apply_window(conn)) {
        }
      });
}

// Async-signal-safe: only an atomic store and a write().
void Projector::stop() noexcept { follower_->stop(); }

// Readable from any thread while run() advances it.
std::int64_t Projector::checkpoint() const noexcept { return checkpoint_; }

// Try-lock in a loop rather than a blocking pg_advisory_lock, so that stop()
// can end the wait.
void Projector::lock(pqxx::connection &conn) {
  // After a lost connection the old session may still hold the lock until
  // the server notices it is gone: then wait for it even in fail mode.
  const bool fail = options_.when_locked == WhenLocked::fail && !locked_before_;
  for (bool waiting = false;; waiting = true) {
    {
      pqxx::nontransaction tx{conn};
      if (tx.exec_params1("SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", lock_namespace, name_)[0]
              .as<bool>()) {
        locked_before_ = true;
        return;
      }
      if (fail) {
        // Who holds it, for the message; it may be gone already.
        const pqxx::result holder = tx.exec_params(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = hashtext($1)::bigint & 4294967295 "
            "AND objid::bigint = hashtext($2)::bigint & 4294967295",
            lock_namespace, name_);
        throw ProjectorLocked("coherence: projector \"" + name_ + "\" is already running" +
                              (holder.empty() ? std::string{}
                                              : " (backend pid " + holder[0][0].as<std::string>() +
                                                    " holds its advisory lock)"));
      }
    }
    if (!waiting && options_.on_lock_wait) options_.on_lock_wait();
    if (!follower_->pause(options_.lock_retry_interval)) throw internal::Stopped{};
  }
}

// One window; true when it stopped short of the head (max_window), so the
// next one should follow at once.
bool Projector::apply_window(pqxx::connection &conn) {
  pqxx::transaction<pqxx::repeatable_read> tx{conn};
  // The first statement takes the snapshot the whole window reads.
  const pqxx::row bounds = tx.exec_params1("SELECT coherence_checkpoint($1), coherence_seq_no()", name_);
  const auto from = bounds[0].as<std::int64_t>() + 1, head = bounds[1].as<std::int64_t>();
  checkpoint_ = from - 1;
  if (head < from) {
    tx.commit();  // nothing new: end the snapshot cleanly
    return false;
  }
  // Written so that a huge max_window cannot overflow.
  const std::int64_t to = head - (from - 1) > options_.max_window ? from - 1 + options_.max_window : head;
  // Replayed rows (all below `from`) come first, in seq_no order, so an
  // aggregate's reset precedes all of its rows in the window.
  std::set<std::pair<std::string, std::string>> reset;
  stream(
      tx, from,
      [&](const Event &event) {
        if (follower_->stopping()) throw internal::Stopped{};
        if (event.replayed && on_reset_) {
          const Identity &aggregate = std::get<Action>(event.body).aggregate;
          if (reset.emplace(aggregate.kind, aggregate.id).second) on_reset_(tx, aggregate);
        }
        on_event_(tx, event);
      },
      to, options_.kinds);
  tx.exec_params1("SELECT coherence_advance($1, $2)", name_, to);
  tx.commit();
  checkpoint_ = to;
  return to < head && !follower_->stopping();
}

}  // namespace coherence
