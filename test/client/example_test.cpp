// The examples built the way a user builds them, with the installed library
// through pkg-config, and run on a fresh database: the walkthrough prints the
// contract's walkthrough, the read-models tutorial its read models.
#include "process.hpp"
#include "support.hpp"

namespace coherence::test {
namespace {

constexpr const char *expected_output = R"(1. Alice adds Neuromancer and Count Zero (base 1)
   => ok:  #1 alice create book/Neuromancer  #2 alice create book/Count Zero

2. Bob adds Mona Lisa Overdrive and Neuromancer (base 1)
   => conflict: ours #4 bob create book/Neuromancer vs theirs #1 alice create book/Neuromancer; accepted before it:  #3 bob create book/Mona Lisa Overdrive

   the store still ends at #2

3. Bob retries, updating Neuromancer's genre, with #1 resolved
   => ok:  #3 bob create book/Mona Lisa Overdrive  #4 bob update book/Neuromancer

4. Alice stores receipts 1 and 2, linked to encryption keys 1 and 2 (base 2)
   => ok:  #5 alice payment receipt/1  #6 alice payment receipt/2

5. The keystore expires encryption key 1 (base 6)
   => ok:  #7 effect key-expired on encryption-key/1

6. Stream from #6
   #5 alice payment receipt/1 (replayed)
   #6 alice payment receipt/2
)";

// Its output in the tutorial's order; the projector's lines come from its
// own thread while main waits for it.
constexpr const char *expected_read_models_output = R"(1. Tables: catalogue and receipts (read models), encryption_keys (the keystore)
2. The projector "bookstore" starts following the stream
3. Alice adds two books with execute
   Neuromancer: ok #1
   Count Zero: ok #2
      Count Zero | William Gibson | 10
      Neuromancer | William Gibson | 10
4. Bob sells a copy of Neuromancer while Carol receives 5 copies
   Bob sees stock 10 and decides 9
   Carol (another connection): ok #3, stock 15
   Bob's append conflicts with #3: execute reads again
   Bob sees stock 15 and decides 14
   Bob: ok #4
      Count Zero | William Gibson | 10
      Neuromancer | William Gibson | 14
5. Alice pays; the card numbers are encrypted with keys 1 and 2
   ok #5 #6; receipt 1's event holds no = "5f02481c425f545a02541c5e5f544602481c5e"
      1 | 100 | 4111-1111-1111-1111
      2 | 200 | 5500-0000-0000-0004
6. The keystore expires key 1
   ok #7
   projector: reset receipt/1
   projector: replays #5 receipt/1, its key is gone: card number dropped
      1 | 100 | (none)
      2 | 200 | 5500-0000-0000-0004
7. Projector stopped at checkpoint #7; the last event is #7
)";

// Compiles examples/<name>.cpp with warnings as errors against the installed
// library and runs it on a fresh database; the binary is removed after.
Outcome build_and_run(const std::string &name) {
  const std::string binary = ::testing::TempDir() + "coherence_" + name + "_" + std::to_string(::getpid());
  const Outcome build = run_program(
      {"/bin/sh", "-c",
       "g++ -std=c++17 -Wall -Wextra -Werror \"$0\" $(pkg-config --cflags --libs coherence-client) -o \"$1\"",
       std::string(COHERENCE_EXAMPLES_DIR) + "/" + name + ".cpp", binary});
  if (build.exit_code != 0) return build;
  TestDatabase db;
  const Outcome run = run_program({binary, db.conninfo()});
  std::remove(binary.c_str());
  return run;
}

TEST(ExampleTest, WalkthroughBuiltWithPkgConfigPrintsTheContractsAnswers) {
  const Outcome run = build_and_run("walkthrough");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected_output);
}

TEST(ExampleTest, ReadModelsBuiltWithPkgConfigDropsTheExpiredCardNumber) {
  const Outcome run = build_and_run("read_models");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected_read_models_output);
}

}  // namespace
}  // namespace coherence::test
