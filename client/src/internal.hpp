// Helpers shared by the library's source files; not installed.
#pragma once

#include <coherence/coherence.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace coherence::internal {

// "2026-11-22T10:00:00.123456Z": what the server's strict ISO 8601 input
// reads, exactly to the microsecond and independent of the session
// TimeZone. Throws std::invalid_argument outside the years 0001 to 9999.
std::string format_timestamp(Timestamp t);

// Reads ISO 8601 with a UTC offset, in every form the server prints
// timestamptz: "2026-11-22T10:00:00.5+05:30", "... 10:00:00Z", "+00:53:28",
// and PostgreSQL's longer years and "... BC". Throws std::invalid_argument
// on anything else, a day that does not exist, or a time outside the range
// of PostgreSQL and Timestamp.
Timestamp parse_timestamp(std::string_view text);

// Throws std::invalid_argument for input the server would reject, with a
// message naming the field the way the server does.
void validate_rebase(std::int64_t base, const std::vector<NewEvent> &history,
                     const std::vector<std::int64_t> &resolved);

// Where the extension lives on tx's connection: `prefix` is its schema,
// quoted, with a dot ("public."), for schema-qualified calls. Looked up once
// per server session (connection and backend pid) and cached; throws
// NotInstalled when the database has no coherence extension.
struct Installation {
  std::string prefix;
  bool stream_has_id = false;  // coherence_stream returns an `id` column (1.2 on)
};
Installation installation(pqxx::transaction_base &tx);

// True when tx's server is a hot standby (pg_is_in_recovery()).
bool in_recovery(pqxx::transaction_base &tx);

// A random sleep in [cap/2, cap] with cap = min(max, initial * 2^(attempt-1)):
// capped exponential backoff with jitter, so clients that failed together
// do not retry in lockstep. `full` jitter draws from [0, cap] instead.
std::chrono::microseconds backoff(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                  bool full = false);

}  // namespace coherence::internal
