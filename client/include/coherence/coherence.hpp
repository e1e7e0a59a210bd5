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
//   5. Subscription: catch up from a position, then follow new events live,
//      from a primary or a hot standby;
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
// connection is pqxx::broken_connection (pqxx::in_doubt_error when it broke
// during a COMMIT). A database without the extension throws NotInstalled. A
// conflict or an invalid base is an ordinary answer of rebase, never an
// exception.
//
// Threads. A Store, like the pqxx::connection under it, is used by one thread
// at a time; give each thread its own connection. Subscription::stop() and
// Projector::stop() are the only calls meant for another thread.
//
// Build with CMake (find_package(coherence-client CONFIG REQUIRED), target
// coherence::client) or `pkg-config --cflags --libs coherence-client`.
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
#include <stdexcept>

namespace coherence {

// ---------------------------------------------------------------------------
// 1. The data
// ---------------------------------------------------------------------------

// Microseconds, as PostgreSQL stores them: the type spans about ±292,000
// years, PostgreSQL 4714 BC to 294276 AD; every stored timestamp up to
// 294247 AD is read exactly, anything beyond is refused, never wrapped.
// Sending one needs a four-digit year (0001 to 9999, UTC), as the server's
// ISO 8601 input does; others throw std::invalid_argument. Convert a
// system_clock::now() with std::chrono::floor<std::chrono::microseconds>.
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

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

  // Sets each top-level key of a JSON object: Patch::assoc_object(book)
  // for any struct with nlohmann's to_json (adl_serializer). Throws
  // std::invalid_argument when the value is not an object.
  static Patch assoc_object(const nlohmann::json &object);
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
//
// `id`, a UUID unique across the log, makes an append idempotent: when every
// event of a history has an id and the same history is sent again (say after
// the connection broke during COMMIT, so you cannot know whether it was
// stored), the server answers Ok with duplicate = true and the events stored
// the first time, and writes nothing. new_event_id() makes one. execute()
// does all of this for you.
struct NewEvent {
  std::string source;
  std::variant<Action, Effect> body;
  std::vector<Identity> triggers = {};
  std::optional<Timestamp> timestamp = {};
  std::optional<std::string> id = {};
};

// A fresh random (version 4) UUID, lowercase with hyphens, from libuuid.
std::string new_event_id();

// A stored event. `replayed` is true only for stream rows that are earlier
// actions replayed because an effect in the streamed window affected their
// aggregate. `id` is the UUID it was appended with, if any (lowercase).
struct Event {
  std::int64_t seq_no = 0;
  Timestamp timestamp = {};
  std::string source;
  std::variant<Action, Effect> body;
  std::vector<Identity> triggers;
  bool replayed = false;
  std::optional<std::string> id = {};
};

// ---------------------------------------------------------------------------
// 2. The answers of an append
// ---------------------------------------------------------------------------

// The whole history was accepted (or, when dry, would be): the events with
// their sequence numbers. `duplicate`: every event had an id and the history
// was already stored, at these seq_nos; nothing was written this time.
struct Ok {
  std::vector<Event> events;
  bool duplicate = false;
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
  std::int64_t next_seq_no = 0;
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
bool operator!=(const Identity &a, const Identity &b);
bool operator!=(const Patch &a, const Patch &b);
bool operator!=(const Action &a, const Action &b);
bool operator!=(const Effect &a, const Effect &b);
bool operator!=(const NewEvent &a, const NewEvent &b);
bool operator!=(const Event &a, const Event &b);
bool operator!=(const Ok &a, const Ok &b);
bool operator!=(const Conflict &a, const Conflict &b);
bool operator!=(const InvalidSeqNo &a, const InvalidSeqNo &b);

// ---------------------------------------------------------------------------
// 3. JSON, in the extension's form
// ---------------------------------------------------------------------------
//
// Identity: ["kind", "id"]. A JSON number id is read as the integer text the
//   server stores (1, 1.0 and 1e0 are "1"); a fraction, or a number beyond
//   2^53 (which nlohmann::json may already have rounded), is refused.
// Patch: {"assoc": [[["a","b"], value], ...], "dissoc": [["c"], ...]}; reads
//   also the object form {"assoc": {"key": value}} and plain-string paths.
// NewEvent: {"id"?, "timestamp"?, "source", "action"|"effect", "triggers"?}.
// Event: {"seq_no", "id"?, "timestamp", "source", "action"|"effect",
//   "triggers" and "replayed" (actions only)}.
// Timestamps are written as "2026-11-22T10:00:00.123456Z" and read in the
// ISO 8601 forms the server prints, with a UTC offset ("...+05:30", "...Z",
// "12000-01-01T00:00:00+00:00", "... BC"); a day that does not exist
// (2026-02-30) is refused.
// RebaseResult: {"result": "ok"|"conflict"|"invalid-seq-no", ...} as the
//   server answers.
//
// Reading JSON of the wrong shape throws std::invalid_argument. These
// conversions are for your program's own use: the server's JSON is the
// authority (the CLI prints it unchanged), and a patch value read through
// nlohmann::json holds integers beyond 64 bits only approximately.

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

// Thrown when the database has no coherence extension.
class NotInstalled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The event store behind a connection you own (the connection must outlive
// the Store). Each call runs in its own transaction, so the connection must
// not have one open. Calls are schema-qualified: the extension's schema is
// looked up once per connection (server session), so search_path does not
// matter. Not thread-safe (see the top of this header).
class Store {
 public:
  explicit Store(pqxx::connection &conn);

  // Appends `history` on top of `base`, all or nothing. `base` is the first
  // seq_no you had not seen when you read the state you acted on. `resolved`
  // lists stored events you have taken into account, so they no longer
  // conflict. With `dry`, checks and answers without writing.
  //
  // Retrying safely: if the connection breaks while the append commits
  // (pqxx::in_doubt_error or pqxx::broken_connection), give every event an
  // id before the first attempt, reconnect, and call rebase again with the
  // same history, base and resolved: Ok with duplicate = true means the
  // first attempt was stored; otherwise this call stored it (or answers a
  // conflict, as any append could). execute() works this way.
  [[nodiscard]] RebaseResult rebase(std::int64_t base, const std::vector<NewEvent> &history,
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
[[nodiscard]] RebaseResult rebase(pqxx::transaction_base &tx, std::int64_t base, const std::vector<NewEvent> &history,
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
  // On a hot standby, where LISTEN is not allowed (pg_is_in_recovery()), it
  // looks this often instead.
  std::chrono::milliseconds standby_poll_interval = std::chrono::milliseconds{200};
  // Reconnection: the first attempt after reconnect_delay, then a capped
  // exponential backoff with jitter: a random time between half and all of
  // min(max_reconnect_delay, reconnect_delay * 2^(n-1)) before attempt n.
  std::chrono::milliseconds reconnect_delay = std::chrono::milliseconds{200};
  std::chrono::milliseconds max_reconnect_delay = std::chrono::seconds{10};
  // Called (on the run() thread) once when the connection is lost, with the
  // error, and once when it is back: a state change each, for logging.
  std::function<void(const std::exception &)> on_reconnect = {};
  std::function<void()> on_reconnected = {};
};

// Delivers every event from a position on, exactly once and in order, then
// keeps following new events until stopped. It owns its connection, opened
// from `conninfo` (libpq syntax; "" uses the PG* environment variables),
// which may be a primary or a hot standby.
//
// How: it LISTENs on the `coherence` channel (on a standby, where LISTEN is
// refused, it polls every standby_poll_interval instead), then reads in
// windows. Each window is one REPEATABLE READ transaction that reads the
// upper bound coherence_seq_no() and the stream rows up to it from the same
// snapshot, so no row can be missed or seen twice; the next window starts
// after that bound (trailing effects advance the position too). Between
// windows it waits for a notification, the poll interval, or stop(). A lost
// connection is reopened and the interrupted window resumed after the last
// delivered row. Rows the stream replays because of an effect are delivered
// with replayed = true.
//
// Across restarts. The position lives in this object only: a restarted
// program passes the position it saved as `from`. To save it exactly with
// what your on_event wrote, use on_window_end (below) and commit both in one
// transaction of yours; otherwise a crash between your write and saving the
// position replays or skips events. Projector does all of this in the
// database and is exactly-once across restarts.
class Subscription {
 public:
  using Handler = std::function<void(const Event &)>;
  // Called after the last event of each window with the position after it
  // (the `from` to restart with), before the next window; what it throws
  // ends run() and the position stays where it was.
  using WindowEnd = std::function<void(std::int64_t position)>;

  // Starts at seq_no `from` (0 or 1 for everything); nothing happens until
  // run().
  Subscription(std::string conninfo, std::int64_t from, Handler on_event, SubscriptionOptions options = {},
               WindowEnd on_window_end = {});
  ~Subscription();
  Subscription(const Subscription &) = delete;
  Subscription &operator=(const Subscription &) = delete;
  // Movable while run() is not running.
  Subscription(Subscription &&) noexcept;
  Subscription &operator=(Subscription &&) noexcept;

  // Delivers events on the calling thread until stop(). Throws if the first
  // connection fails, or what on_event or on_window_end throw (also a
  // pqxx::broken_connection of a connection of theirs); losses of its own
  // connection later are retried.
  void run();

  // Makes run() return soon, even from inside a wait; final. Safe to call
  // from any thread and from a signal handler.
  void stop() noexcept;

  // The seq_no the next window starts at: every event below it was
  // delivered.
  std::int64_t position() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace coherence

#include <coherence/read_model.hpp>
