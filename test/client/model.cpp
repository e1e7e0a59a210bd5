// The test read model: plain SQL through the projector's transaction.
#include "model.hpp"

#include "pqxx_compat.hpp"

namespace coherence::test {

// A separate connection: the table is created before any projector runs.
void create_model(const std::string &conninfo, const std::string &table) {
  pqxx::connection conn{conninfo};
  pqxx::work tx{conn};
  compat::exec(tx, "CREATE TABLE " + table +
           " (kind text, id text, applied int NOT NULL, state jsonb NOT NULL, PRIMARY KEY (kind, id))");
  tx.commit();
}

// Test actions set top-level keys only, so the state is a shallow merge.
Projector::Handler model_handler(const std::string &table) {
  const std::string upsert = "INSERT INTO " + table +
                             " AS m VALUES ($1, $2, 1, $3::jsonb) ON CONFLICT (kind, id) DO UPDATE "
                             "SET applied = m.applied + 1, state = m.state || excluded.state";
  return [upsert](pqxx::transaction_base &tx, const Event &event) {
    const Action &action = std::get<Action>(event.body);
    nlohmann::json assoc = nlohmann::json::object();
    for (const auto &[path, value] : action.patch.assoc) assoc[path.at(0)] = value;
    compat::exec(tx, upsert, action.aggregate.kind, action.aggregate.id, assoc.dump());
  };
}

// The replayed rows that follow rebuild the row from nothing.
Projector::Reset model_reset(const std::string &table) {
  const std::string remove = "DELETE FROM " + table + " WHERE kind = $1 AND id = $2";
  return [remove](pqxx::transaction_base &tx, const Identity &aggregate) {
    compat::exec(tx, remove, aggregate.kind, aggregate.id);
  };
}

// One line per row.
std::string dump_model(const std::string &conninfo, const std::string &table) {
  pqxx::connection conn{conninfo};
  pqxx::read_transaction tx{conn};
  std::string text;
  for (const auto &row : tx.exec("SELECT kind, id, applied, state::text FROM " + table + " ORDER BY kind, id"))
    text += row[0].as<std::string>() + "/" + row[1].as<std::string>() + " " + row[2].as<std::string>() + " " +
            row[3].as<std::string>() + "\n";
  return text;
}

}  // namespace coherence::test
