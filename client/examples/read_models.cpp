// Read models in C++: the bookstore's catalogue and receipts tables, kept up
// to date from the event stream by a Projector, while actors change books
// with execute (lookup -> operate -> write). Receipts carry card numbers
// encrypted with keys from a keystore; when a key expires, the stream replays
// the receipts linked to it and the read model drops the numbers it can no
// longer decrypt.
//
// Build it against the installed library and run it on a database where
// `CREATE EXTENSION coherence;` was run and nothing was appended yet:
//
//   g++ -std=c++17 read_models.cpp $(pkg-config --cflags --libs coherence-client) -o read_models
//   PGDATABASE=mydb ./read_models            # or: ./read_models "dbname=mydb"
#include <coherence/coherence.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

using coherence::Action;
using coherence::Identity;
using coherence::NewEvent;
using nlohmann::json;

// ---------------------------------------------------------------------------
// The "encryption". Illustrative only: XOR with a key, then hex, is NOT
// encryption; use a real cipher (libsodium, OpenSSL) in an application. It is
// enough to show that without the key, the number cannot be read back.
// ---------------------------------------------------------------------------

// XORs each byte with the key's bytes, cycled, and writes it as hex.
std::string encrypt(const std::string &plain, const std::string &key) {
  std::ostringstream hex;
  for (std::size_t i = 0; i < plain.size(); ++i)
    hex << std::hex << std::setw(2) << std::setfill('0')
        << (static_cast<unsigned char>(plain[i]) ^ static_cast<unsigned char>(key[i % key.size()]));
  return hex.str();
}

// The inverse of encrypt with the same key.
std::string decrypt(const std::string &hex, const std::string &key) {
  std::string plain;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    plain += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16) ^ key[(i / 2) % key.size()]);
  return plain;
}

// The value an action's patch sets at top-level `key`.
const json &field(const Action &action, const std::string &key) {
  for (const auto &[path, value] : action.patch.assoc)
    if (path == coherence::Path{key}) return value;
  throw std::invalid_argument("no " + key + " in the patch");
}

// ---------------------------------------------------------------------------
// The projection: what each event means for the read-model tables. It runs
// inside the projector's window transaction `tx`, which also advances the
// checkpoint, so the tables and the checkpoint always agree. Values are
// quoted with tx.quote(), which reads the same in libpqxx 6, 7 and 8.
// ---------------------------------------------------------------------------

// A book row is its aggregate's state as of this event (coherence_aggregate
// at the event's seq_no), so each action simply overwrites the row.
void project_book(pqxx::transaction_base &tx, const coherence::Event &event, const Action &action) {
  const std::string title = tx.quote(action.aggregate.id);
  tx.exec("INSERT INTO catalogue (title, author, stock) "
          "SELECT " + title + ", s ->> 'author', (s ->> 'stock')::int "
          "FROM coherence_aggregate('book', " + title + ", " + tx.quote(event.seq_no) + ") s "
          "ON CONFLICT (title) DO UPDATE SET author = excluded.author, stock = excluded.stock");
}

// A receipt row holds the card number decrypted with the key the receipt is
// linked to, or NULL when the keystore no longer has that key.
void project_receipt(pqxx::transaction_base &tx, const coherence::Event &event, const Action &action) {
  std::optional<std::string> card_no;
  for (const Identity &trigger : event.triggers) {
    if (trigger.kind != "encryption-key") continue;
    const pqxx::result key = tx.exec("SELECT secret FROM encryption_keys WHERE id = " + tx.quote(trigger.id));
    if (!key.empty()) card_no = decrypt(field(action, "no").get<std::string>(), key[0][0].c_str());
  }
  if (event.replayed)
    std::cout << "   projector: replays #" << event.seq_no << " receipt/" << action.aggregate.id
              << (card_no ? ", card number readable\n" : ", its key is gone: card number dropped\n");
  tx.exec("INSERT INTO receipts (id, total, card_no) VALUES (" + tx.quote(action.aggregate.id) + ", " +
          tx.quote(field(action, "total").get<int>()) + ", " + (card_no ? tx.quote(*card_no) : "NULL") +
          ") ON CONFLICT (id) DO UPDATE SET total = excluded.total, card_no = excluded.card_no");
}

// The handler: every action, in order, by aggregate kind.
void project(pqxx::transaction_base &tx, const coherence::Event &event) {
  const Action &action = std::get<Action>(event.body);
  if (action.aggregate.kind == "book") project_book(tx, event, action);
  if (action.aggregate.kind == "receipt") project_receipt(tx, event, action);
}

// The reset hook: an effect in the window affects this aggregate, and all its
// actions are about to be replayed, so forget what was projected of it.
void reset(pqxx::transaction_base &tx, const Identity &aggregate) {
  std::cout << "   projector: reset " << aggregate.kind << "/" << aggregate.id << "\n";
  if (aggregate.kind == "book") tx.exec("DELETE FROM catalogue WHERE title = " + tx.quote(aggregate.id));
  if (aggregate.kind == "receipt") tx.exec("DELETE FROM receipts WHERE id = " + tx.quote(aggregate.id));
}

// ---------------------------------------------------------------------------
// The decisions: pure functions from an aggregate's state to new events, for
// execute. They never touch the database.
// ---------------------------------------------------------------------------

// An action on a book that sets some fields.
NewEvent book_event(const std::string &actor, const std::string &reason, const std::string &title,
                    const json &fields) {
  coherence::Patch patch;
  for (const auto &[key, value] : fields.items()) patch.assoc.push_back({{key}, value});
  return NewEvent{"bookstore", Action{reason, {"user", actor}, {"book", title}, patch}};
}

// Adds `copies` (negative: sells) to a book's stock, whatever it is now.
coherence::Operate change_stock(const std::string &actor, const std::string &title, int copies) {
  return [=](const std::optional<json> &state) {
    const int stock = state ? state->value("stock", 0) : 0;
    return std::vector<NewEvent>{book_event(actor, "stock", title, {{"stock", stock + copies}})};
  };
}

// ---------------------------------------------------------------------------
// Printing and waiting, for the tutorial's output.
// ---------------------------------------------------------------------------

// Each answer of execute in one line.
std::string describe(const coherence::RebaseResult &result) {
  if (const auto *ok = std::get_if<coherence::Ok>(&result)) {
    std::string text = "ok";
    for (const auto &e : ok->events) text += " #" + std::to_string(e.seq_no);
    return text;
  }
  if (const auto *conflict = std::get_if<coherence::Conflict>(&result))
    return "conflict with #" + std::to_string(conflict->theirs.seq_no);
  return "invalid base";
}

// A read-model table, one row per line; NULL shows as "(none)".
void print_table(pqxx::connection &conn, const std::string &query) {
  pqxx::read_transaction tx{conn};
  for (const auto &row : tx.exec(query)) {
    std::cout << "   ";
    bool first = true;
    for (const auto &value : row) {
      std::cout << (first ? "   " : " | ") << (value.is_null() ? "(none)" : value.c_str());
      first = false;
    }
    std::cout << "\n";
  }
}

// The projector runs on its own thread; a real application would not wait
// for it. Here each step waits until the read model includes everything
// appended so far, so the tables printed next are complete.
void wait_for(const coherence::Projector &projector, coherence::Store &store) {
  const std::int64_t head = store.seq_no();
  while (projector.checkpoint() < head) std::this_thread::sleep_for(std::chrono::milliseconds{10});
}

int main(int argc, char **argv) {
  const std::string conninfo = argc > 1 ? argv[1] : "";
  pqxx::connection conn{conninfo};
  coherence::Store store{conn};

  // Step 1. The read models are ordinary tables of the application, and so
  // is the keystore's table of encryption keys.
  std::cout << "1. Tables: catalogue and receipts (read models), encryption_keys (the keystore)\n";
  {
    pqxx::work tx{conn};
    tx.exec("CREATE TABLE catalogue (title text PRIMARY KEY, author text, stock int)");
    tx.exec("CREATE TABLE receipts (id text PRIMARY KEY, total int NOT NULL, card_no text)");
    tx.exec("CREATE TABLE encryption_keys (id text PRIMARY KEY, secret text NOT NULL)");
    tx.exec("INSERT INTO encryption_keys VALUES ('1', 'k3y-one'), ('2', 'k3y-two')");
    tx.commit();
  }

  // Step 2. One projector, named "bookstore", maintains both tables. It
  // catches up from its checkpoint (0: nothing applied yet), then follows
  // new events as they are appended, until stopped. Its name also locks it:
  // a second "bookstore" projector would fail (or wait) instead of running
  // next to it.
  std::cout << "2. The projector \"bookstore\" starts following the stream\n";
  coherence::Projector projector{"bookstore", conninfo, project, reset};
  std::thread projecting([&] { projector.run(); });

  // Step 3. Alice adds two books. With execute, an actor reads the book's
  // state, decides, and appends; a new book has no state yet.
  std::cout << "3. Alice adds two books with execute\n";
  for (const std::string title : {"Neuromancer", "Count Zero"}) {
    const auto result = coherence::execute(conn, {"book", title}, [&](const std::optional<json> &state) {
      if (state) return std::vector<NewEvent>{};  // already there: nothing to do
      return std::vector<NewEvent>{
          book_event("alice", "create", title, {{"author", "William Gibson"}, {"stock", 10}})};
    });
    std::cout << "   " << title << ": " << describe(result) << "\n";
  }
  wait_for(projector, store);
  print_table(conn, "SELECT title, author, stock FROM catalogue ORDER BY title");

  // Step 4. Bob sells a copy of Neuromancer while Carol, at the same time,
  // receives 5 new copies. Bob's execute reads stock 10 and decides 9, but
  // Carol's 15 lands between his lookup and his write (simulated here by
  // appending it from inside his decision). His append conflicts with hers;
  // execute reads again (stock 15) and re-runs his decision: 14, not 9.
  // Carol's copies are not lost.
  std::cout << "4. Bob sells a copy of Neuromancer while Carol receives 5 copies\n";
  bool carol_done = false;
  coherence::ExecuteOptions options;
  options.on_conflict = [](const coherence::Conflict &c) {
    std::cout << "   Bob's append conflicts with #" << c.theirs.seq_no << ": execute reads again\n";
  };
  const auto bob = change_stock("bob", "Neuromancer", -1);
  const auto result = coherence::execute(
      conn, {"book", "Neuromancer"},
      [&](const std::optional<json> &state) {
        std::cout << "   Bob sees stock " << state->at("stock") << " and decides "
                  << state->at("stock").get<int>() - 1 << "\n";
        if (!carol_done) {
          carol_done = true;
          pqxx::connection carols{conninfo};
          std::cout << "   Carol (another connection): "
                    << describe(coherence::execute(carols, {"book", "Neuromancer"},
                                                   change_stock("carol", "Neuromancer", +5)))
                    << ", stock 15\n";
        }
        return bob(state);
      },
      options);
  std::cout << "   Bob: " << describe(result) << "\n";
  wait_for(projector, store);
  print_table(conn, "SELECT title, author, stock FROM catalogue ORDER BY title");

  // Step 5. Alice pays for two orders. The shop encrypts each card number
  // with a key from the keystore and links the receipt to that key (a
  // trigger), so that an effect on the key reaches the receipt later. The
  // projector decrypts the numbers into the receipts table.
  std::cout << "5. Alice pays; the card numbers are encrypted with keys 1 and 2\n";
  const auto receipt = [](const std::string &id, const std::string &card_no, int total, const std::string &key_id,
                          const std::string &key) {
    coherence::Patch patch;
    patch.assoc = {{{"no"}, encrypt(card_no, key)}, {{"total"}, total}};
    return NewEvent{"bookstore", Action{"payment", {"user", "alice"}, {"receipt", id}, patch},
                    {{"encryption-key", key_id}}};
  };
  const auto paid = store.rebase(store.seq_no() + 1, {receipt("1", "4111-1111-1111-1111", 100, "1", "k3y-one"),
                                                      receipt("2", "5500-0000-0000-0004", 200, "2", "k3y-two")});
  std::cout << "   " << describe(paid) << "; receipt 1's event holds no = "
            << field(std::get<Action>(std::get<coherence::Ok>(paid).events.at(0).body), "no") << "\n";
  wait_for(projector, store);
  print_table(conn, "SELECT id, total, card_no FROM receipts ORDER BY id");

  // Step 6. Key 1 expires. The keystore deletes it and appends the
  // key-expired effect in one transaction (the transaction-level rebase), so
  // no reader sees one without the other. In the projector's next window the
  // stream replays every action of receipt 1: the reset hook deletes its
  // row, the replayed action projects it again, and decryption now fails.
  std::cout << "6. The keystore expires key 1\n";
  {
    pqxx::work tx{conn};
    tx.exec("DELETE FROM encryption_keys WHERE id = '1'");
    const NewEvent expiry{"keystore", coherence::Effect{"key-expired", {"encryption-key", "1"}}};
    const auto expired = coherence::rebase(tx, coherence::seq_no(tx) + 1, {expiry});
    // Printed before the commit: after it, the projector prints its own lines.
    std::cout << "   " << describe(expired) << "\n";
    tx.commit();
  }
  wait_for(projector, store);
  print_table(conn, "SELECT id, total, card_no FROM receipts ORDER BY id");

  // Step 7. Stop the projector. Its position lives in the database, committed
  // with the tables: started again, it goes on from there.
  projector.stop();
  projecting.join();
  std::cout << "7. Projector stopped at checkpoint #" << projector.checkpoint() << "; the last event is #"
            << store.seq_no() << "\n";
  return 0;
}
