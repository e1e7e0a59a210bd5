// Store and the transaction-level operations: thin wrappers over the
// extension's SQL functions that convert to and from the typed structs.
#include "internal.hpp"

#include <stdexcept>

namespace coherence {

using nlohmann::json;

namespace {

// Rows fetched per round trip while streaming: large enough to amortise the
// round trip, small enough that client memory stays flat.
constexpr int stream_batch = 1000;

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
Event event_of_row(const pqxx::row &row) {
  Event event;
  event.seq_no = row[0].as<std::int64_t>();
  event.timestamp = Timestamp{std::chrono::duration_cast<Timestamp::duration>(
      std::chrono::microseconds{row[1].as<std::int64_t>()})};
  event.source = row[2].as<std::string>();
  Action action;
  action.reason = row[3].as<std::string>();
  action.actor = Identity{row[4].as<std::string>(), row[5].as<std::string>()};
  action.aggregate = Identity{row[6].as<std::string>(), row[7].as<std::string>()};
  action.patch = json::parse(row[8].c_str()).get<Patch>();
  event.body = std::move(action);
  event.triggers = json::parse(row[9].c_str()).get<std::vector<Identity>>();
  event.replayed = row[10].as<bool>();
  return event;
}

// Names cursors uniquely so that streams in one transaction never collide,
// even when an earlier one was abandoned by an exception.
std::string next_cursor_name() {
  static std::atomic<unsigned long> counter{0};
  return "coherence_stream_" + std::to_string(++counter);
}

}  // namespace

// Validates locally, then one call of coherence_rebase.
RebaseResult rebase(pqxx::transaction_base &tx, std::int64_t base, const std::vector<NewEvent> &history,
                    const std::vector<std::int64_t> &resolved, bool dry) {
  internal::validate_rebase(base, history, resolved);
  const std::string body = json(history).dump();
  const pqxx::row row = tx.exec_params1("SELECT coherence_rebase($1, $2::jsonb, $3::bigint[], $4)", base, body,
                                        bigint_array(resolved), dry);
  return json::parse(row[0].c_str()).get<RebaseResult>();
}

// A cursor over coherence_stream, fetched in batches so memory stays flat.
std::size_t stream(pqxx::transaction_base &tx, std::int64_t from, const std::function<void(const Event &)> &on_event,
                   std::optional<std::int64_t> to, const std::vector<std::string> &kinds) {
  const std::string cursor = next_cursor_name();
  // The timestamp travels as exact microseconds since the epoch (extract
  // yields numeric), so no text parsing and no session TimeZone is involved.
  tx.exec0("DECLARE " + cursor +
           " NO SCROLL CURSOR FOR "
           "SELECT seq_no, (extract(epoch FROM \"timestamp\") * 1000000)::bigint, source, reason, "
           "actor_kind, actor_id, aggregate_kind, aggregate_id, patch, triggers, replayed "
           "FROM coherence_stream(" +
           std::to_string(from) + ", " + (to ? std::to_string(*to) : "NULL") + ", " + kinds_array(tx, kinds) + ")");
  const std::string fetch = "FETCH FORWARD " + std::to_string(stream_batch) + " FROM " + cursor;
  std::size_t count = 0;
  for (;;) {
    const pqxx::result batch = tx.exec(fetch);
    for (const auto &row : batch) {
      on_event(event_of_row(row));
      ++count;
    }
    if (batch.size() < static_cast<pqxx::result::size_type>(stream_batch)) break;
  }
  tx.exec0("CLOSE " + cursor);
  return count;
}

// coherence_seq_no() in tx's snapshot.
std::int64_t seq_no(pqxx::transaction_base &tx) {
  return tx.exec1("SELECT coherence_seq_no()")[0].as<std::int64_t>();
}

// coherence_event(n); SQL NULL means absent.
std::optional<Event> event(pqxx::transaction_base &tx, std::int64_t seq_no) {
  const pqxx::row row = tx.exec_params1("SELECT coherence_event($1)", seq_no);
  if (row[0].is_null()) return std::nullopt;
  return json::parse(row[0].c_str()).get<Event>();
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
