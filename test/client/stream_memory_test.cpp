// Store::stream over a million rows keeps client memory flat: the rows come
// through a cursor in batches, never as one result.
#include "support.hpp"

#include <sys/resource.h>

namespace coherence::test {
namespace {

constexpr std::int64_t rows = 1000000;

// The process's peak resident set size so far, in bytes.
long peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss * 1024L;
}

TEST_F(StoreTest, StreamsAMillionEventsInFlatMemory) {
  // Written by the server itself from generate_series, so the client never
  // holds the events; histories of 10,000 events, the server's limit.
  sql("SELECT count(coherence_rebase(1, (SELECT jsonb_agg(jsonb_build_object("
      "'source', 'bulk', 'action', jsonb_build_object('reason', 'load', 'actor', '[\"user\", \"loader\"]'::jsonb, "
      "'aggregate', jsonb_build_array('item', i::text), 'patch', jsonb_build_object('assoc', jsonb_build_object("
      "'n', i, 'padding', repeat('x', 100)))))) FROM generate_series(b * 10000 + 1, (b + 1) * 10000) i))) "
      "FROM generate_series(0, " + std::to_string(rows / 10000 - 1) + ") b");
  ASSERT_EQ(store.seq_no(), rows);

  const long before = peak_rss_bytes();
  std::int64_t count = 0, last = 0, padding_bytes = 0;
  const std::size_t n = store.stream(0, [&](const Event &e) {
    ++count;
    if (e.seq_no != last + 1) ADD_FAILURE() << "seq_no " << e.seq_no << " after " << last;
    last = e.seq_no;
    padding_bytes += static_cast<std::int64_t>(std::get<Action>(e.body).patch.assoc.at(1).second.get<std::string>().size());
  });
  const long grown = peak_rss_bytes() - before;

  EXPECT_EQ(n, static_cast<std::size_t>(rows));
  EXPECT_EQ(count, rows);
  EXPECT_EQ(last, rows);
  // The rows carry over 100 MB of padding alone; holding them would show.
  EXPECT_EQ(padding_bytes, rows * 100);
  EXPECT_LT(grown, 64L * 1024 * 1024) << "peak RSS grew by " << grown / 1024 << " KiB";
  RecordProperty("peak_rss_growth_kib", static_cast<int>(grown / 1024));
}

}  // namespace
}  // namespace coherence::test
