// Appends one event and prints the head: enough to show the package links
// and works against the database given as argv[1].
#include <coherence/coherence.hpp>

#include <iostream>

int main(int argc, char **argv) {
  pqxx::connection conn{argc > 1 ? argv[1] : ""};
  coherence::Store store{conn};
  coherence::Patch patch;
  patch.assoc = {{{"title"}, "Neuromancer"}};
  const auto result = store.rebase(store.seq_no() + 1, {{"consumer", coherence::Action{"create", {"user", "u"}, {"book", "1"}, patch}}});
  std::cout << (std::holds_alternative<coherence::Ok>(result) ? "ok" : "not ok") << " head " << store.seq_no() << "\n";
}
