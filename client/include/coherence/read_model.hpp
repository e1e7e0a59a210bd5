// <coherence/read_model.hpp> — reads and writes kept apart (CQS), the rest of
// the reference that <coherence/coherence.hpp> begins (it includes this
// header; include either).
//
// Actors read an aggregate's state, decide, and append (sections 6 and 7);
// projectors stream events into read models, ordinary tables of yours
// (section 8).
#pragma once

#include <coherence/coherence.hpp>

#include <stdexcept>

namespace coherence {

// ---------------------------------------------------------------------------
// 6. Aggregate state
// ---------------------------------------------------------------------------

// An aggregate's state and the base to append on top of it: the object its
// patches fold into (coherence_aggregate), none when it has no actions, and
// the first seq_no not reflected in it. Both come from one statement, so an
// append with this base conflicts exactly when the state has gone stale.
//
// The state is JSON; read it into a type of yours with nlohmann's
// adl_serializer (to_json/from_json for your struct): state->get<Book>().
// Patch::assoc_object(book) turns such a struct back into a patch.
struct AggregateState {
  std::optional<nlohmann::json> state = {};
  std::int64_t base = 1;
};

// Reads `aggregate` in tx's snapshot. With `at_seq_no`, its state as of that
// event (coherence_aggregate(kind, id, at_seq_no)), and the base after it
// (at most the head + 1): an append on that base conflicts with anything
// that changed the aggregate after at_seq_no.
AggregateState aggregate(pqxx::transaction_base &tx, const Identity &aggregate,
                         std::optional<std::int64_t> at_seq_no = {});

// The same in a read-only transaction of its own on `conn`, which must not
// have one open.
AggregateState aggregate(pqxx::connection &conn, const Identity &aggregate,
                         std::optional<std::int64_t> at_seq_no = {});

// ---------------------------------------------------------------------------
// 7. execute: lookup -> operate -> write
// ---------------------------------------------------------------------------

// Your decision: the events to append, given the aggregate's current state
// (none when it has no actions yet). Keep it pure: execute may call it
// several times, each time with a fresher state, and appends only the events
// of the last call. It may return events on any aggregates; each is checked
// for conflicts against the same base.
using Operate = std::function<std::vector<NewEvent>(const std::optional<nlohmann::json> &state)>;

struct ExecuteOptions {
  // Attempts in all, the first included; at least 1. A conflict, a
  // serialization failure (SQLSTATE 40001, e.g. under
  // default_transaction_isolation = serializable) or a deadlock (40P01) each
  // use one attempt, and so does a lost connection while appending.
  int max_attempts = 10;
  // Before attempt n+1 it sleeps a random time between 0 and
  // min(max_backoff, initial_backoff * 2^(n-1)) ("full jitter"), so writers
  // that collided do not collide again in lockstep.
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds{2};
  std::chrono::milliseconds max_backoff = std::chrono::milliseconds{200};
  // Called with every Conflict answer, the last one included (for logging
  // and metrics).
  std::function<void(const Conflict &)> on_conflict = {};
};

// The loop of the CQRS "lookup, operate, write" pattern, safe however many
// threads or processes run it at once (each on its own connection):
//
//   1. lookup: read the aggregate's state and base in one statement;
//   2. operate: call operate(state);
//   3. write: rebase(base, events). A Conflict means someone changed an
//      aggregate since the lookup; after a jittered backoff, go to 1 with
//      the fresh state. A serialization failure (40001) or a deadlock
//      (40P01) goes to 1 the same way.
//
// Exactly once. Before the first write every event without an id gets a
// fresh random UUID (new_event_id()). When the connection breaks during the
// write (its COMMIT included, when the client cannot know whether it was
// stored), execute reconnects `conn` and sends the *same* history with the
// same ids and base: the server's duplicate answer (Ok, duplicate = true)
// means the first attempt was stored. So a history is stored at most once
// however often the connection breaks.
//
// Returns the final answer: Ok with the stored events, or the last Conflict
// once max_attempts are used up (no exception for conflicts: it is a normal
// answer the caller decides about). When operate returns no events there is
// nothing to write: the answer is an Ok with no events and nothing is sent.
// Each step runs in its own short transaction on `conn` (none is open while
// operate runs), so `conn` must not have one open. What operate throws, and
// other server errors, propagate; nothing is written then. The last lost
// connection or serialization failure propagates once the attempts are used
// up.
[[nodiscard]] RebaseResult execute(pqxx::connection &conn, const Identity &aggregate, const Operate &operate,
                                   const ExecuteOptions &options = {});

// ---------------------------------------------------------------------------
// 8. Projector: a read model with an atomic checkpoint
// ---------------------------------------------------------------------------

// What run() does when another projector with the same name is running.
enum class WhenLocked {
  fail,  // throw ProjectorLocked
  wait,  // wait until the other one stops (or its connection dies)
};

// A Projector follows like a Subscription (kinds, poll intervals,
// reconnection and its callbacks are the same), plus:
struct ProjectorOptions : SubscriptionOptions {
  // Read the events from this connection (libpq syntax), typically a hot
  // standby, instead of from the projector's own connection, which keeps
  // the read model, the checkpoint and the lock (so it must be a primary).
  // Events are immutable, so rows read on the standby are the rows of the
  // primary; a window waits until the standby has replayed them. Both
  // connections are reopened when either breaks.
  std::optional<std::string> stream_conninfo = {};
  WhenLocked when_locked = WhenLocked::fail;
  // While waiting, how often to try the lock again.
  std::chrono::milliseconds lock_retry_interval = std::chrono::milliseconds{500};
  // Called (on the run() thread) when the projector starts waiting for the
  // lock, for logging.
  std::function<void()> on_lock_wait = {};
  // At most this many seq_nos per window (transaction): bounds the work a
  // crash or a stop throws away, and the length of each transaction.
  std::int64_t max_window = 10000;
};

// Thrown by Projector::run() in WhenLocked::fail mode when another projector
// with the same name holds the lock.
class ProjectorLocked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Keeps a read model (tables of yours, in the same database) up to date:
// catches up from its checkpoint, then follows new events live, until
// stopped. It owns its connection, opened from `conninfo` (libpq syntax; ""
// uses the PG* environment variables).
//
// Windows. Each window is one REPEATABLE READ read-write transaction that
//   1. reads the checkpoint c = coherence_checkpoint(name) and the head
//      h = coherence_seq_no() in one snapshot, and sets the upper bound
//      to = min(h, c + max_window);
//   2. streams coherence_stream(c + 1, to, kinds) from that snapshot, calling
//      on_event(tx, event) for each row: your read-model writes go into tx;
//   3. before the first row of an aggregate that the window replays (an
//      effect in the window affected it; replayed = true), calls
//      on_reset(tx, aggregate) once, so you delete what you projected of it
//      and let the replayed rows rebuild it;
//   4. calls coherence_advance(name, to) and commits.
// (With stream_conninfo, steps 1 and 4 run on the projector's connection and
// the head and rows of steps 1 and 2 come from a REPEATABLE READ READ ONLY
// snapshot on the stream connection.) A serialization failure (40001) or a
// deadlock (40P01) rolls the window back and applies it again after a short
// jittered backoff.
// Read-model writes and the checkpoint commit together or not at all: a
// crash, a lost connection, a stop() or an exception in the middle of a
// window rolls the whole window back, and it is applied again from the
// checkpoint, so no event is skipped or applied twice. The checkpoint in the
// database is the only position: a restarted projector goes on from it.
// Trailing effects (no rows of their own) advance it too.
//
// Live. Between windows it waits for NOTIFY coherence (sent by every
// append), the poll interval or stop(), as a Subscription does; a lost
// connection is reopened (after on_reconnect) and the lock taken again.
//
// One runner per name. On each connection, before anything else, it takes
// the session advisory lock
//     pg_try_advisory_lock(hashtext('coherence.projector'), hashtext(name))
// (in pg_locks: locktype 'advisory', objsubid 2, in this database), held
// until its connection closes, which also happens when the process dies.
// A second projector with the same name then fails (ProjectorLocked) or
// waits, as ProjectorOptions::when_locked says. After a lost connection a
// projector always waits: its old session may hold the lock until the
// server notices it is gone. Distinct names whose hashes collide exclude
// each other too (harmless; unlikely).
//
// Effects are not stream rows, so on_event sees only actions; with `kinds`,
// only rows (replayed or not) of those aggregate kinds, and resets of them.
class Projector {
 public:
  // Projects one event: write the read model in tx (do not commit it).
  using Handler = std::function<void(pqxx::transaction_base &tx, const Event &event)>;
  // Forgets what was projected of `aggregate`, before the window replays it.
  using Reset = std::function<void(pqxx::transaction_base &tx, const Identity &aggregate)>;

  // A non-empty name identifies the read model: its checkpoint and its lock.
  // Without on_reset, replayed rows simply reach on_event. Nothing happens
  // until run().
  Projector(std::string name, std::string conninfo, Handler on_event, Reset on_reset = {},
            ProjectorOptions options = {});
  ~Projector();
  Projector(const Projector &) = delete;
  Projector &operator=(const Projector &) = delete;
  // Movable while run() is not running.
  Projector(Projector &&) noexcept;
  Projector &operator=(Projector &&) noexcept;

  // Applies windows on the calling thread until stop(). Throws
  // ProjectorLocked (fail mode), what on_event or on_reset throw (the window
  // is rolled back), server errors, and a failing first connection; later
  // connection losses are retried.
  void run();

  // Makes run() return soon, abandoning (rolling back) a window in progress;
  // final. Safe to call from any thread and from a signal handler.
  void stop() noexcept;

  // The last checkpoint run() read or committed: every event up to it is in
  // the read model. 0 until run() has read it.
  std::int64_t checkpoint() const noexcept;

  const std::string &name() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace coherence
