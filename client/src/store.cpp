// Store and the transaction-level operations: thin wrappers over the
// extension's SQL functions, schema-qualified, that convert to and from the
// typed structs.
#include "internal.hpp"
#include "pqxx_compat.hpp"

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>

#include <uuid/uuid.h>

namespace coherence {

using nlohmann::json;

namespace {

// Rows fetched per round trip while streaming: large enough to amortise the
// round trip, small enough that client memory stays flat.
constexpr int stream_batch = 1000;

// Server sessions whose installation was looked up; a handful per program
// is typical, so the oldest are forgotten beyond this many.
constexpr std::size_t installations_kept = 64;

// A bigint[] literal such as {1,2}; the values are integers, so nothing needs
// quoting.
std::string bigint_array(const std::vector<std::int64_t> &values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + std::to_string(values[i]);
  return text + "}";
}

// ARRAY['a','b']::text[] with each kind quoted, or NULL for "all kinds".
std::string kinds_array(pqxx::transaction_base &tx, const std::vector<std::string> &kinds) {
  if (kinds.empty()) return "NULL";
  std::string text = "ARRAY[";
  for (std::size_t i = 0; i < kinds.size(); ++i) text += (i ? "," : "") + tx.quote(kinds[i]);
  return text + "]::text[]";
}

// An action event from a coherence_stream row selected by stream() below.
// A template: libpqxx 8 iterates a result as pqxx::row_ref, older ones as
// pqxx::row.
template <typename Row>
Event event_of_row(const Row &row, bool with_id) {
  Event event;
  event.seq_no = row[0].template as<std::int64_t>();
  event.timestamp = Timestamp{std::chrono::microseconds{row[1].template as<std::int64_t>()}};
  event.source = row[2].template as<std::string>();
  Action action;
  action.reason = row[3].template as<std::string>();
  action.actor = Identity{row[4].template as<std::string>(), row[5].template as<std::string>()};
  action.aggregate = Identity{row[6].template as<std::string>(), row[7].template as<std::string>()};
  action.patch = json::parse(compat::text(row[8])).template get<Patch>();
  event.body = std::move(action);
  event.triggers = json::parse(compat::text(row[9])).template get<std::vector<Identity>>();
  event.replayed = row[10].template as<bool>();
  if (with_id && !row[11].is_null()) event.id = row[11].template as<std::string>();
  return event;
}

// Names cursors uniquely so that streams in one transaction never collide,
// even when an earlier one was abandoned by an exception.
std::string next_cursor_name() {
  static std::atomic<unsigned long> counter{0};
  return "coherence_stream_" + std::to_string(++counter);
}

}  // namespace

namespace internal {

// A small cache keyed by the connection object and its backend pid, so a
// reconnected session (new pid) is looked up again.
Installation installation(pqxx::transaction_base &tx) {
  struct Entry {
    const void *conn;
    int pid;
    Installation installation;
  };
  static std::mutex mutex;
  static std::deque<Entry> entries;
  const void *conn = &tx.conn();
  const int pid = tx.conn().backendpid();
  {
    const std::lock_guard<std::mutex> lock(mutex);
    for (const auto &entry : entries)
      if (entry.conn == conn && entry.pid == pid) return entry.installation;
  }
  const pqxx::result found = compat::exec(
      tx,
      "SELECT quote_ident(n.nspname) || '.', EXISTS (SELECT FROM pg_catalog.pg_proc p "
      "WHERE p.pronamespace = e.extnamespace AND p.proname = 'coherence_stream' AND 'id' = ANY (p.proargnames)) "
      "FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
      "WHERE e.extname = 'coherence'");
  if (found.empty())
    throw NotInstalled("coherence: the coherence extension is not installed in this database (CREATE EXTENSION "
                       "coherence)");
  Installation installed{found[0][0].as<std::string>(), found[0][1].as<bool>()};
  const std::lock_guard<std::mutex> lock(mutex);
  if (entries.size() >= installations_kept) entries.pop_front();
  entries.push_back(Entry{conn, pid, installed});
  return installed;
}

// Asked once per connection by the follow loop.
bool in_recovery(pqxx::transaction_base &tx) {
  return compat::exec(tx, "SELECT pg_catalog.pg_is_in_recovery()")[0][0].as<bool>();
}

// Shared by reconnection and execute's retries.
std::chrono::microseconds backoff(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                  bool full) {
  thread_local std::minstd_rand random{std::random_device{}()};
  const auto limit = std::chrono::duration_cast<std::chrono::microseconds>(max);
  auto cap = std::chrono::duration_cast<std::chrono::microseconds>(initial);
  for (int i = 1; i < attempt && cap < limit; ++i) cap *= 2;
  cap = std::max(std::min(cap, limit), std::chrono::microseconds{0});
  std::uniform_int_distribution<std::int64_t> pick{full ? 0 : cap.count() / 2, cap.count()};
  return std::chrono::microseconds{pick(random)};
}

}  // namespace internal

// libuuid's random generator (from /dev/urandom), lowercase like the server.
std::string new_event_id() {
  uuid_t uuid;
  uuid_generate_random(uuid);
  char text[37];
  uuid_unparse_lower(uuid, text);
  return text;
}

// Validates locally, then one call of coherence_rebase.
RebaseResult rebase(pqxx::transaction_base &tx, std::int64_t base, const std::vector<NewEvent> &history,
                    const std::vector<std::int64_t> &resolved, bool dry) {
  internal::validate_rebase(base, history, resolved);
  const std::string body = json(history).dump();
  const std::string prefix = internal::installation(tx).prefix;
  const pqxx::result r = compat::exec(tx, "SELECT " + prefix + "coherence_rebase($1, $2::jsonb, $3::bigint[], $4)",
                                      base, body, bigint_array(resolved), dry);
  return json::parse(compat::text(r[0][0])).get<RebaseResult>();
}

// A cursor over coherence_stream, fetched in batches so memory stays flat.
std::size_t stream(pqxx::transaction_base &tx, std::int64_t from, const std::function<void(const Event &)> &on_event,
                   std::optional<std::int64_t> to, const std::vector<std::string> &kinds) {
  const internal::Installation installed = internal::installation(tx);
  const std::string cursor = next_cursor_name();
  // The timestamp travels as exact microseconds since the epoch (extract
  // yields numeric), so no text parsing and no session TimeZone is involved.
  compat::exec(tx, "DECLARE " + cursor +
                       " NO SCROLL CURSOR FOR "
                       "SELECT seq_no, (extract(epoch FROM \"timestamp\") * 1000000)::bigint, source, reason, "
                       "actor_kind, actor_id, aggregate_kind, aggregate_id, patch, triggers, replayed" +
                       (installed.stream_has_id ? ", id::text" : "") + " FROM " + installed.prefix +
                       "coherence_stream(" + std::to_string(from) + ", " + (to ? std::to_string(*to) : "NULL") +
                       ", " + kinds_array(tx, kinds) + ")");
  const std::string fetch = "FETCH FORWARD " + std::to_string(stream_batch) + " FROM " + cursor;
  std::size_t count = 0;
  for (;;) {
    const pqxx::result batch = compat::exec(tx, fetch);
    for (const auto &row : batch) {
      on_event(event_of_row(row, installed.stream_has_id));
      ++count;
    }
    if (batch.size() < static_cast<pqxx::result::size_type>(stream_batch)) break;
  }
  compat::exec(tx, "CLOSE " + cursor);
  return count;
}

// coherence_seq_no() in tx's snapshot.
std::int64_t seq_no(pqxx::transaction_base &tx) {
  return compat::exec(tx, "SELECT " + internal::installation(tx).prefix + "coherence_seq_no()")[0][0]
      .as<std::int64_t>();
}

// coherence_event(n); SQL NULL means absent.
std::optional<Event> event(pqxx::transaction_base &tx, std::int64_t seq_no) {
  const pqxx::result r =
      compat::exec(tx, "SELECT " + internal::installation(tx).prefix + "coherence_event($1)", seq_no);
  if (r[0][0].is_null()) return std::nullopt;
  return json::parse(compat::text(r[0][0])).get<Event>();
}

// Borrows the connection; the caller keeps ownership.
Store::Store(pqxx::connection &conn) : conn_(conn) {}

// One read-write transaction, committed whatever the answer (nothing is written on a conflict).
RebaseResult Store::rebase(std::int64_t base, const std::vector<NewEvent> &history,
                           const std::vector<std::int64_t> &resolved, bool dry) {
  pqxx::work tx{conn_};
  RebaseResult result = coherence::rebase(tx, base, history, resolved, dry);
  tx.commit();
  return result;
}

// A read-only transaction: the cursor needs one, and it gives one snapshot.
std::size_t Store::stream(std::int64_t from, const std::function<void(const Event &)> &on_event,
                          std::optional<std::int64_t> to, const std::vector<std::string> &kinds) {
  pqxx::read_transaction tx{conn_};
  const std::size_t count = coherence::stream(tx, from, on_event, to, kinds);
  tx.commit();
  return count;
}

// The head, in its own read-only transaction.
std::int64_t Store::seq_no() {
  pqxx::read_transaction tx{conn_};
  const std::int64_t head = coherence::seq_no(tx);
  tx.commit();
  return head;
}

// One event, in its own read-only transaction.
std::optional<Event> Store::event(std::int64_t seq_no) {
  pqxx::read_transaction tx{conn_};
  std::optional<Event> found = coherence::event(tx, seq_no);
  tx.commit();
  return found;
}

}  // namespace coherence
