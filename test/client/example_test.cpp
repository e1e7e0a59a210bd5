// The walkthrough example built the way a user builds it, with the
// installed library through pkg-config, and run on a fresh database: its
// output is the contract's walkthrough.
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

TEST(ExampleTest, WalkthroughBuiltWithPkgConfigPrintsTheContractsAnswers) {
  const std::string binary = ::testing::TempDir() + "coherence_walkthrough_" + std::to_string(::getpid());
  const Outcome build = run_program(
      {"/bin/sh", "-c",
       "g++ -std=c++17 -Wall -Wextra -Werror \"$0\" $(pkg-config --cflags --libs coherence-client) -o \"$1\"",
       COHERENCE_EXAMPLES_DIR "/walkthrough.cpp", binary});
  ASSERT_EQ(build.exit_code, 0) << build.err;

  TestDatabase db;
  const Outcome run = run_program({binary, db.conninfo()});
  std::remove(binary.c_str());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected_output);
}

}  // namespace
}  // namespace coherence::test
