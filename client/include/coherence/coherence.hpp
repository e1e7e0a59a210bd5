// <coherence/coherence.hpp> — the C++ client of the coherence PostgreSQL
// extension, an event store with conflict-checked appends.
//
// Read this header top to bottom; it is the library's reference:
//
//   1. the data: identities, patches, actions, effects, events;
//   2. the answers of an append: Ok, Conflict, InvalidSeqNo;
//   3. JSON conversions (nlohmann::json) in the extension's JSON form;
//   4. Store: append (rebase), stream, seq_no and event on a connection you own;
//      the same four operations inside a transaction you manage;
//   5. Subscription: catch up from a position, then follow new events live;
//
// and <coherence/read_model.hpp>, included at the end of this header:
//
//   6. aggregate state: an aggregate's folded state with the base to append on;
//   7. execute: the lookup -> operate -> write loop, retried on conflicts;
//   8. Projector: a read model kept in your tables, with an atomic checkpoint.
//
// Errors. Input the client can check before sending (an empty source, an empty
// patch, duplicate triggers, ...) throws std::invalid_argument and sends
// nothing. Errors from the server are the libpqxx exceptions they are:
// pqxx::sql_error and its subclasses carry the SQLSTATE (sqlstate()), a lost
// connection is pqxx::broken_connection. A conflict or an invalid base is an
// ordinary answer of rebase, never an exception.
//
// Link with `pkg-config --cflags --libs coherence-client`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace coherence {

namespace internal {
class Follower;  // the reconnecting follow loop behind Subscription and Projector
}  // namespace internal

// ---------------------------------------------------------------------------
// 1. The data
// ---------------------------------------------------------------------------

// Timestamps are stored by the server with microsecond precision; finer
// digits of a time_point are truncated when sending.
using Timestamp = std::chrono::system_clock::time_point;

// An actor, aggregate or trigger: a [kind, id] pair of non-empty strings.
struct Identity {
  std::string kind, id;
};

// A key path into an aggregate: {"address", "city"} is nested, {"genre"} is
// a top-level key. Never empty.
using Path = std::vector<std::string>;

// A change to an aggregate: set (assoc) values at paths and remove (dissoc)
// paths. At least one of the two is non-empty.
struct Patch {
  std::vector<std::pair<Path, nlohmann::json>> assoc;
  std::vector<Path> dissoc;
};

// An actor has a reason for applying a patch to an aggregate.
struct Action {
  std::string reason;
  Identity actor, aggregate;
  Patch patch;
};

// Something happened to a trigger for a reason (say, a key expired); every
// aggregate with an action linked to that trigger is replayed when streaming.
struct Effect {
  std::string reason;
  Identity trigger;
};

// An event to append. Actions may be linked to distinct triggers; effects
// may not. Without a timestamp the server uses its transaction time.
struct NewEvent {
  std::string source;
  std::variant<Action, Effect> body;
  std::vector<Identity> triggers = {};
  std::optional<Timestamp> timestamp = {};
};

// A stored event. `replayed` is true only for stream rows that are earlier
// actions replayed because an effect in the streamed window affected their
// aggregate.
struct Event {
  std::int64_t seq_no;
  Timestamp timestamp;
  std::string source;
  std::variant<Action, Effect> body;
  std::vector<Identity> triggers;
  bool replayed = false;
};

// ---------------------------------------------------------------------------
// 2. The answers of an append
// ---------------------------------------------------------------------------

// The whole history was accepted (or, when dry, would be): the events with
// their sequence numbers.
struct Ok {
  std::vector<Event> events;
};

// An action of the history (`ours`) conflicts with a stored event the caller
// had not seen (`theirs`). `events` are the history's events before `ours`,
// which would have been accepted. Nothing was written.
struct Conflict {
  std::vector<Event> events;
  Event ours, theirs;
};

// The base was beyond the end of the store; `next_seq_no` is the seq_no the
// next event would get. Nothing was written.
struct InvalidSeqNo {
  std::int64_t next_seq_no;
};

using RebaseResult = std::variant<Ok, Conflict, InvalidSeqNo>;

// Value equality, field by field (patch values compare as JSON).
bool operator==(const Identity &a, const Identity &b);
bool operator==(const Patch &a, const Patch &b);
bool operator==(const Action &a, const Action &b);
bool operator==(const Effect &a, const Effect &b);
bool operator==(const NewEvent &a, const NewEvent &b);
bool operator==(const Event &a, const Event &b);
bool operator==(const Ok &a, const Ok &b);
bool operator==(const Conflict &a, const Conflict &b);
bool operator==(const InvalidSeqNo &a, const InvalidSeqNo &b);

// ---------------------------------------------------------------------------
// 3. JSON, in the extension's form
// ---------------------------------------------------------------------------
//
// Identity: ["kind", "id"] (a JSON number id is read as its text).
// Patch: {"assoc": [[["a","b"], value], ...], "dissoc": [["c"], ...]}; reads
//   also the object form {"assoc": {"key": value}} and plain-string paths.
// NewEvent: {"timestamp"?, "source", "action"|"effect", "triggers"?}.
// Event: {"seq_no", "timestamp", "source", "action"|"effect",
//   "triggers" and "replayed" (actions only)}.
// Timestamps are written as "2026-11-22T10:00:00.123456Z" and read in any
// ISO 8601 form with a UTC offset ("...+05:30", "...Z").
// RebaseResult: {"result": "ok"|"conflict"|"invalid-seq-no", ...} as the
//   server answers.
//
// Reading JSON of the wrong shape throws std::invalid_argument.

void to_json(nlohmann::json &j, const Identity &v);
void from_json(const nlohmann::json &j, Identity &v);
void to_json(nlohmann::json &j, const Patch &v);
void from_json(const nlohmann::json &j, Patch &v);
void to_json(nlohmann::json &j, const Action &v);
void from_json(const nlohmann::json &j, Action &v);
void to_json(nlohmann::json &j, const Effect &v);
void from_json(const nlohmann::json &j, Effect &v);
void to_json(nlohmann::json &j, const NewEvent &v);
void from_json(const nlohmann::json &j, NewEvent &v);
void to_json(nlohmann::json &j, const Event &v);
void from_json(const nlohmann::json &j, Event &v);
void to_json(nlohmann::json &j, const Ok &v);
void from_json(const nlohmann::json &j, Ok &v);
void to_json(nlohmann::json &j, const Conflict &v);
void from_json(const nlohmann::json &j, Conflict &v);
void to_json(nlohmann::json &j, const InvalidSeqNo &v);
void from_json(const nlohmann::json &j, InvalidSeqNo &v);
void to_json(nlohmann::json &j, const RebaseResult &v);
void from_json(const nlohmann::json &j, RebaseResult &v);

// ---------------------------------------------------------------------------
// 4. Store
// ---------------------------------------------------------------------------

// The event store behind a connection you own (the connection must outlive
// the Store, and the extension must be on its search_path). Each call runs
// in its own transaction, so the connection must not have one open.
class Store {
 public:
  explicit Store(pqxx::connection &conn);

  // Appends `history` on top of `base`, all or nothing. `base` is the first
  // seq_no you had not seen when you read the state you acted on. `resolved`
  // lists stored events you have taken into account, so they no longer
  // conflict. With `dry`, checks and answers without writing.
  RebaseResult rebase(std::int64_t base, const std::vector<NewEvent> &history,
                      const std::vector<std::int64_t> &resolved = {}, bool dry = false);

  // Calls on_event for each row of coherence_stream(from, to, kinds), in
  // seq_no order, without holding the whole result in memory (rows come in
  // batches through a server-side cursor). No `to` means no upper bound; no
  // kinds means every aggregate kind. Returns the number of rows. An
  // exception thrown by on_event ends the stream and propagates.
  std::size_t stream(std::int64_t from, const std::function<void(const Event &)> &on_event,
                     std::optional<std::int64_t> to = {}, const std::vector<std::string> &kinds = {});

  // The highest seq_no stored (0 when empty).
  std::int64_t seq_no();

  // The event with this seq_no, if any.
  std::optional<Event> event(std::int64_t seq_no);

 private:
  pqxx::connection &conn_;
};

// The same operations inside a transaction you manage, for example to append
// events atomically with writes to your own tables. They commit or roll back
// with `tx`.
RebaseResult rebase(pqxx::transaction_base &tx, std::int64_t base, const std::vector<NewEvent> &history,
                    const std::vector<std::int64_t> &resolved = {}, bool dry = false);
std::size_t stream(pqxx::transaction_base &tx, std::int64_t from,
                   const std::function<void(const Event &)> &on_event,
                   std::optional<std::int64_t> to = {}, const std::vector<std::string> &kinds = {});
std::int64_t seq_no(pqxx::transaction_base &tx);
std::optional<Event> event(pqxx::transaction_base &tx, std::int64_t seq_no);

// ---------------------------------------------------------------------------
// 5. Subscription: catch up, then follow
// ---------------------------------------------------------------------------

struct SubscriptionOptions {
  // Aggregate kinds to receive; empty means all.
  std::vector<std::string> kinds = {};
  // How long to wait for a notification before looking anyway; covers
  // notifications lost while disconnected.
  std::chrono::milliseconds poll_interval = std::chrono::seconds{5};
  // Pause between reconnection attempts.
  std::chrono::milliseconds reconnect_delay = std::chrono::milliseconds{200};
  // Called (on the run() thread) with the error each time the connection is
  // lost, before reconnecting; for logging.
  std::function<void(const std::exception &)> on_reconnect = {};
};

// Delivers every event from a position on, exactly once and in order, then
// keeps following new events until stopped. It owns its connection, opened
// from `conninfo` (libpq syntax; "" uses the PG* environment variables).
//
// How: it LISTENs on the `coherence` channel, then reads in windows. Each
// window is one REPEATABLE READ transaction that reads the upper bound
// coherence_seq_no() and the stream rows up to it from the same snapshot, so
// no row can be missed or seen twice; the next window starts after that
// bound (trailing effects advance the position too). Between windows it
// waits for a notification, the poll interval, or stop(). A lost connection
// is reopened and the interrupted window resumed after the last delivered
// row. Rows the stream replays because of an effect are delivered with
// replayed = true.
class Subscription {
 public:
  // Starts at seq_no `from` (0 or 1 for everything); nothing happens until
  // run().
  Subscription(std::string conninfo, std::int64_t from, std::function<void(const Event &)> on_event,
               SubscriptionOptions options = {});
  ~Subscription();
  Subscription(const Subscription &) = delete;
  Subscription &operator=(const Subscription &) = delete;

  // Delivers events on the calling thread until stop(). Throws if the first
  // connection fails, or what on_event throws; later connection losses are
  // retried.
  void run();

  // Makes run() return soon, even from inside a wait; final. Safe to call
  // from any thread and from a signal handler.
  void stop() noexcept;

  // The seq_no the next window starts at: every event below it was
  // delivered.
  std::int64_t position() const noexcept;

 private:
  void read_window(pqxx::connection &conn);

  std::string conninfo_;
  std::function<void(const Event &)> on_event_;
  SubscriptionOptions options_;
  std::unique_ptr<internal::Follower> follower_;
  std::atomic<std::int64_t> position_;
  std::optional<std::int64_t> window_to_;  // upper bound of an unfinished window
  std::int64_t window_delivered_ = 0;      // last seq_no delivered in it
};

}  // namespace coherence

#include <coherence/read_model.hpp>
