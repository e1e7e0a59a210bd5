// The contract's seed walkthrough through the C++ API, with its expected
// answers.
#include "support.hpp"

namespace coherence::test {
namespace {

// A bookstore action setting top-level fields of a book.
NewEvent book(const std::string &actor, const std::string &reason, const std::string &title, const std::string &genre) {
  Patch patch;
  patch.assoc = {{{"author"}, "William Gibson"}, {{"genre"}, genre}};
  return NewEvent{"bookstore", Action{reason, {"user", actor}, {"book", title}, patch}};
}

// A receipt linked to an encryption key.
NewEvent receipt(const std::string &id, int total) {
  Patch patch;
  patch.assoc = {{{"no"}, "encrypted-" + id}, {{"total"}, total}};
  return NewEvent{"bookstore", Action{"payment", {"user", "alice"}, {"receipt", id}, patch}, {{"encryption-key", id}}};
}

TEST_F(StoreTest, SeedWalkthrough) {
  // 1. Alice adds two books.
  const auto r1 = store.rebase(1, {book("alice", "create", "Neuromancer", "SciFi"),
                                   book("alice", "create", "Count Zero", "Cyberpunk")});
  ASSERT_TRUE(std::holds_alternative<Ok>(r1));
  EXPECT_EQ(seq_nos(std::get<Ok>(r1).events), (std::vector<std::int64_t>{1, 2}));

  // 2. Bob, from base 1, conflicts on Neuromancer; nothing is written.
  const NewEvent mona_lisa = book("bob", "create", "Mona Lisa Overdrive", "Cyberpunk");
  const auto r2 = store.rebase(1, {mona_lisa, book("bob", "create", "Neuromancer", "Cyberpunk")});
  ASSERT_TRUE(std::holds_alternative<Conflict>(r2));
  const auto &c = std::get<Conflict>(r2);
  ASSERT_EQ(seq_nos(c.events), std::vector<std::int64_t>{3});
  EXPECT_EQ(std::get<Action>(c.events[0].body).aggregate.id, "Mona Lisa Overdrive");
  EXPECT_EQ(c.ours.seq_no, 4);
  EXPECT_EQ(std::get<Action>(c.ours.body).aggregate.id, "Neuromancer");
  EXPECT_EQ(c.theirs.seq_no, 1);
  EXPECT_EQ(store.seq_no(), 2);

  // 3. Bob resolves #1 and updates instead.
  Patch genre;
  genre.assoc = {{{"genre"}, "Cyberpunk"}};
  const auto r3 = store.rebase(
      1, {mona_lisa, NewEvent{"bookstore", Action{"update", {"user", "bob"}, {"book", "Neuromancer"}, genre}}}, {1});
  ASSERT_TRUE(std::holds_alternative<Ok>(r3));
  EXPECT_EQ(seq_nos(std::get<Ok>(r3).events), (std::vector<std::int64_t>{3, 4}));

  // 4. Receipts linked to encryption keys 1 and 2.
  const auto r4 = store.rebase(2, {receipt("1", 100), receipt("2", 200)});
  ASSERT_TRUE(std::holds_alternative<Ok>(r4));
  EXPECT_EQ(seq_nos(std::get<Ok>(r4).events), (std::vector<std::int64_t>{5, 6}));

  // 5. Key 1 expires.
  const auto r5 = store.rebase(6, {NewEvent{"keystore", Effect{"key-expired", {"encryption-key", "1"}}}});
  ASSERT_TRUE(std::holds_alternative<Ok>(r5));
  EXPECT_EQ(seq_nos(std::get<Ok>(r5).events), std::vector<std::int64_t>{7});

  // 6. Streaming from 6 replays receipt 1.
  std::vector<std::tuple<std::int64_t, std::string, bool>> rows;
  store.stream(6, [&](const Event &e) {
    rows.emplace_back(e.seq_no, std::get<Action>(e.body).aggregate.id, e.replayed);
  });
  EXPECT_EQ(rows, (std::vector<std::tuple<std::int64_t, std::string, bool>>{{5, "1", true}, {6, "2", false}}));
}

}  // namespace
}  // namespace coherence::test
