// Test databases and helpers shared by the client tests.
#include "support.hpp"

#include "pqxx_compat.hpp"

#include <atomic>
#include <cstdlib>

#include <unistd.h>

namespace coherence {

// JSON is the most readable form of these values in a failure message.
void PrintTo(const Identity &v, std::ostream *os) { *os << nlohmann::json(v).dump(); }
void PrintTo(const Patch &v, std::ostream *os) { *os << nlohmann::json(v).dump(); }
void PrintTo(const NewEvent &v, std::ostream *os) { *os << nlohmann::json(v).dump(); }
void PrintTo(const Event &v, std::ostream *os) { *os << nlohmann::json(v).dump(); }

}  // namespace coherence

namespace coherence::test {
namespace {

// Runs a statement that cannot run in a transaction (CREATE/DROP DATABASE)
// on the server's default database.
void admin(const std::string &statement) {
  pqxx::connection conn{""};
  pqxx::nontransaction tx{conn};
  compat::exec(tx, statement);
}

}  // namespace

// Names are unique per process and instance, so parallel tests never collide.
TestDatabase::TestDatabase(bool with_extension) {
  static std::atomic<int> counter{0};
  name_ = "coherence_t_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  admin("CREATE DATABASE " + name_);
  if (with_extension) {
    pqxx::connection conn{conninfo()};
    pqxx::nontransaction tx{conn};
    compat::exec(tx, "CREATE EXTENSION coherence");
  }
}

// Drops the database even when the test failed.
TestDatabase::~TestDatabase() {
  // FORCE ends connections a failed test may have left open.
  try {
    admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception &e) {
    ADD_FAILURE() << "cannot drop " << name_ << ": " << e.what();
  }
}

// Other settings come from the PG* environment of the throwaway server.
std::string TestDatabase::conninfo(const std::string &extra) const {
  return "dbname=" + name_ + (extra.empty() ? "" : " " + extra);
}

// A separate connection, so the fixture's own connection stays untouched.
std::string StoreTest::sql(const std::string &query) {
  pqxx::connection other{db.conninfo()};
  pqxx::nontransaction tx{other};
  const pqxx::result r = tx.exec(query);
  return r.empty() || r[0][0].is_null() ? std::string{} : r[0][0].as<std::string>();
}

// Short enough to write histories inline in tests.
NewEvent action(const std::string &actor, const Identity &aggregate, const std::string &key,
                const nlohmann::json &value, std::vector<Identity> triggers) {
  Patch patch;
  patch.assoc.push_back({{key}, value});
  return NewEvent{"test", Action{"set", {"user", actor}, aggregate, patch}, std::move(triggers)};
}

// An effect from the "test" source.
NewEvent effect(const Identity &trigger, const std::string &reason) {
  return NewEvent{"test", Effect{reason, trigger}};
}

// The standby serves the primary's databases once it has replayed their
// creation; it is reached on the same socket directory.
std::string standby_conninfo(const std::string &dbname) {
  const char *port = std::getenv("COHERENCE_STANDBY_PORT");
  if (!port || !*port) {
    ADD_FAILURE() << "COHERENCE_STANDBY_PORT is not set: run under scripts/with-server.sh --standby";
    throw std::runtime_error("no standby");
  }
  return "port=" + std::string(port) + " dbname=" + dbname;
}

// Just the seq_nos, in order.
std::vector<std::int64_t> seq_nos(const std::vector<Event> &events) {
  std::vector<std::int64_t> out;
  for (const auto &e : events) out.push_back(e.seq_no);
  return out;
}

}  // namespace coherence::test
