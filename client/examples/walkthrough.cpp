// The coherence walkthrough in C++: a bookstore where Alice and Bob edit the
// catalogue at the same time, and a keystore whose expiring keys make
// receipts replay.
//
// Build it against the installed library and run it on a database where
// `CREATE EXTENSION coherence;` was run and nothing was appended yet:
//
//   g++ -std=c++17 walkthrough.cpp $(pkg-config --cflags --libs coherence-client) -o walkthrough
//   PGDATABASE=mydb ./walkthrough            # or: ./walkthrough "dbname=mydb"
#include <coherence/coherence.hpp>

#include <iostream>

using coherence::Action;
using coherence::Effect;
using coherence::NewEvent;

// Step 0. Events are plain structs. A helper keeps the steps short: an actor
// with a reason sets some top-level fields of a book.
NewEvent book(const std::string &actor, const std::string &reason, const std::string &title,
              const std::vector<std::pair<std::string, std::string>> &fields) {
  coherence::Patch patch;
  for (const auto &[key, value] : fields) patch.assoc.push_back({{key}, value});
  return NewEvent{"bookstore", Action{reason, {"user", actor}, {"book", title}, patch}};
}

// A payment receipt whose card number is encrypted with key `key`; the
// trigger links the receipt to that key.
NewEvent receipt(const std::string &id, const std::string &card_no, int total, const std::string &key) {
  coherence::Patch patch;
  patch.assoc = {{{"no"}, card_no}, {{"total"}, total}};
  return NewEvent{"bookstore", Action{"payment", {"user", "alice"}, {"receipt", id}, patch}, {{"encryption-key", key}}};
}

// A one-line summary of a stored event, e.g. "#4 bob update book/Neuromancer".
std::string describe(const coherence::Event &e) {
  std::string text = "#" + std::to_string(e.seq_no) + " ";
  if (const auto *a = std::get_if<Action>(&e.body))
    text += a->actor.id + " " + a->reason + " " + a->aggregate.kind + "/" + a->aggregate.id;
  else
    text += "effect " + std::get<Effect>(e.body).reason + " on " + std::get<Effect>(e.body).trigger.kind + "/" +
            std::get<Effect>(e.body).trigger.id;
  return text + (e.replayed ? " (replayed)" : "");
}

// Every answer of rebase is a value: Ok, Conflict or InvalidSeqNo. std::visit
// makes sure each one is handled.
void show(const coherence::RebaseResult &result) {
  std::visit(
      [](const auto &answer) {
        using T = std::decay_t<decltype(answer)>;
        if constexpr (std::is_same_v<T, coherence::Ok>) {
          std::cout << "   => ok:";
          for (const auto &e : answer.events) std::cout << "  " << describe(e);
        } else if constexpr (std::is_same_v<T, coherence::Conflict>) {
          std::cout << "   => conflict: ours " << describe(answer.ours) << " vs theirs " << describe(answer.theirs)
                    << "; accepted before it:";
          for (const auto &e : answer.events) std::cout << "  " << describe(e);
        } else {
          std::cout << "   => invalid base, next seq_no is " << answer.next_seq_no;
        }
      },
      result);
  std::cout << "\n\n";
}

int main(int argc, char **argv) {
  // Connect with libpq's usual settings: a connection string, or the PG*
  // environment variables when it is empty. Store only borrows the
  // connection.
  pqxx::connection conn{argc > 1 ? argv[1] : ""};
  coherence::Store store{conn};

  // Step 1. Alice adds two books. Base 1 means "I have seen nothing yet": any
  // stored event on the same aggregate would be a conflict.
  std::cout << "1. Alice adds Neuromancer and Count Zero (base 1)\n";
  show(store.rebase(1, {book("alice", "create", "Neuromancer", {{"author", "William Gibson"}, {"genre", "SciFi"}}),
                        book("alice", "create", "Count Zero", {{"author", "William Gibson"}, {"genre", "Cyberpunk"}})}));

  // Step 2. Bob, who also started from an empty store, adds Mona Lisa
  // Overdrive and Neuromancer. Neuromancer was changed by #1 which Bob has
  // not seen: the answer is a conflict, and nothing is written.
  const std::vector<NewEvent> bobs_books = {
      book("bob", "create", "Mona Lisa Overdrive", {{"author", "William Gibson"}, {"genre", "Cyberpunk"}}),
      book("bob", "create", "Neuromancer", {{"author", "William Gibson"}, {"genre", "Cyberpunk"}})};
  std::cout << "2. Bob adds Mona Lisa Overdrive and Neuromancer (base 1)\n";
  show(store.rebase(1, bobs_books));
  std::cout << "   the store still ends at #" << store.seq_no() << "\n\n";

  // Step 3. Bob looks at #1, turns his create into an update of the genre,
  // and declares #1 resolved.
  std::cout << "3. Bob retries, updating Neuromancer's genre, with #1 resolved\n";
  show(store.rebase(1, {bobs_books[0], book("bob", "update", "Neuromancer", {{"genre", "Cyberpunk"}})}, {1}));

  // Step 4. Alice stores two receipts whose card numbers are encrypted with
  // keys 1 and 2. Linking each receipt to its key (a trigger) lets an effect
  // on the key reach the receipt later.
  std::cout << "4. Alice stores receipts 1 and 2, linked to encryption keys 1 and 2 (base 2)\n";
  show(store.rebase(2, {receipt("1", "avd2dlg3g93fm1osu", 100, "1"), receipt("2", "kepf62djsdk8fw21", 200, "2")}));

  // Step 5. Key 1 expires: the keystore appends an effect on that trigger.
  std::cout << "5. The keystore expires encryption key 1 (base 6)\n";
  show(store.rebase(6, {NewEvent{"keystore", Effect{"key-expired", {"encryption-key", "1"}}}}));

  // Step 6. A projection that has read up to #5 streams from #6. It gets #6
  // as usual, and receipt 1 (#5) again, marked replayed, because the effect
  // in its window touched that receipt's key: the projection can now drop
  // the card number it can no longer decrypt. Effects are not rows.
  std::cout << "6. Stream from #6\n";
  store.stream(6, [](const coherence::Event &e) { std::cout << "   " << describe(e) << "\n"; });
  return 0;
}
