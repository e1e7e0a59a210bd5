// Every difference between the libpqxx versions the client builds with
// (6.4 in Debian 12, 7.x in Debian 13, 8 in Debian testing), in one place,
// keyed on PQXX_VERSION_MAJOR/MINOR. Not installed.
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <string_view>
#include <utility>

namespace coherence::compat {

// The window transactions: REPEATABLE READ, read-only or read-write.
#if PQXX_VERSION_MAJOR < 7
using repeatable_read_ro = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;
using repeatable_read_rw = pqxx::transaction<pqxx::repeatable_read, pqxx::read_write>;
#else
using repeatable_read_ro = pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::write_policy::read_only>;
using repeatable_read_rw = pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::write_policy::read_write>;
#endif

// A statement without parameters.
inline pqxx::result exec(pqxx::transaction_base &tx, const std::string &query) { return tx.exec(query); }

// A statement with $1, $2, ... parameters: exec_params until 7.9 deprecated
// it in favour of exec(query, params).
template <typename First, typename... Rest>
pqxx::result exec(pqxx::transaction_base &tx, const std::string &query, First &&first, Rest &&...rest) {
#if PQXX_VERSION_MAJOR > 7 || (PQXX_VERSION_MAJOR == 7 && PQXX_VERSION_MINOR >= 9)
  return tx.exec(query, pqxx::params{std::forward<First>(first), std::forward<Rest>(rest)...});
#else
  return tx.exec_params(query, std::forward<First>(first), std::forward<Rest>(rest)...);
#endif
}

// A field's text without a copy; valid while its result lives.
template <typename Field>
std::string_view text(const Field &field) {
  return std::string_view{field.c_str(), field.size()};
}

// The connection string a connection was opened with.
inline std::string conninfo(const pqxx::connection &conn) {
#if PQXX_VERSION_MAJOR < 7
  return conn.options();
#else
  return conn.connection_string();
#endif
}

// Opens a broken connection again. libpqxx 6 reactivates a connection by
// itself when the next transaction starts; from 7 on a connection object
// stays broken and is replaced by a new one.
inline void reconnect(pqxx::connection &conn) {
#if PQXX_VERSION_MAJOR < 7
  // A trivial transaction triggers the reactivation (and throws if the
  // server is still unreachable).
  pqxx::nontransaction probe{conn};
  probe.exec("SELECT 1");
#else
  conn = pqxx::connection{conninfo(conn)};
#endif
}

}  // namespace coherence::compat
