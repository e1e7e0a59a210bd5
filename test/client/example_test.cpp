// The examples built the way a user builds them, through pkg-config, against
// this build installed into a temporary prefix, and run on a fresh database:
// the walkthrough prints the contract's walkthrough, the read-models tutorial
// its read models. And the header's [[nodiscard]] makes an ignored append
// answer a compile error.
#include "process.hpp"
#include "support.hpp"

#include <fstream>
#include <pqxx/version>

// The language standard users compile with: libpqxx 8's headers need C++20.
#if PQXX_VERSION_MAJOR >= 8
#define CXX_STANDARD_FLAG "-std=c++20"
#else
#define CXX_STANDARD_FLAG "-std=c++17"
#endif

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

// This build, installed into a temporary prefix (once per test process,
// removed at exit), as `make install` would install it; pkg-config's
// --define-prefix makes the .pc file point into that prefix, so nothing
// from another installation is used.
class Installed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prefix_ = ::testing::TempDir() + "coherence_prefix_" + std::to_string(::getpid());
    const Outcome install =
        run_program({"/bin/sh", "-c", "cmake --install \"$0\" --prefix \"$1\"", COHERENCE_BUILD_DIR, prefix_});
    ASSERT_EQ(install.exit_code, 0) << install.err;
  }
  static void TearDownTestSuite() { run_program({"/bin/rm", "-rf", prefix_}); }

  // Compiles `source` with warnings as errors through the prefix's
  // pkg-config file into `binary`.
  static Outcome build(const std::string &source, const std::string &binary) {
    return run_program({"/bin/sh", "-c",
                        "PKG_CONFIG_PATH=\"$2/lib/pkgconfig\" && export PKG_CONFIG_PATH && "
                        "g++ " CXX_STANDARD_FLAG " -Wall -Wextra -Werror \"$0\" $(pkg-config --define-prefix --cflags --libs coherence-client) "
                        "-o \"$1\"",
                        source, binary, prefix_});
  }

  // Compiles `source` without linking, warnings as errors.
  static Outcome syntax_check(const std::string &source) {
    return run_program({"/bin/sh", "-c",
                        "PKG_CONFIG_PATH=\"$1/lib/pkgconfig\" && export PKG_CONFIG_PATH && "
                        "g++ " CXX_STANDARD_FLAG " -Wall -Wextra -Werror -fsyntax-only \"$0\" "
                        "$(pkg-config --define-prefix --cflags coherence-client)",
                        source, prefix_});
  }

  // Compiles examples/<name>.cpp and runs it on a fresh database; the
  // binary is removed after.
  static Outcome build_and_run(const std::string &name) {
    const std::string binary = ::testing::TempDir() + "coherence_" + name + "_" + std::to_string(::getpid());
    const Outcome built = build(std::string(COHERENCE_EXAMPLES_DIR) + "/" + name + ".cpp", binary);
    if (built.exit_code != 0) return built;
    TestDatabase db;
    const Outcome run = run_program(
        {"/bin/sh", "-c", "LD_LIBRARY_PATH=\"$2/lib\" exec \"$0\" \"$1\"", binary, db.conninfo(), prefix_});
    std::remove(binary.c_str());
    return run;
  }

  static std::string prefix_;
};
std::string Installed::prefix_;

using ExampleTest = Installed;

TEST_F(ExampleTest, WalkthroughBuiltWithPkgConfigPrintsTheContractsAnswers) {
  const Outcome run = build_and_run("walkthrough");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected_output);
}

TEST_F(ExampleTest, ReadModelsBuiltWithPkgConfigDropsTheExpiredCardNumber) {
  const Outcome run = build_and_run("read_models");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected_read_models_output);
}

// Defect: rebase and execute lacked [[nodiscard]], so a Conflict was easy to
// drop on the floor. Ignoring either answer must now fail to compile.
TEST_F(ExampleTest, IgnoringAnAppendAnswerIsACompileError) {
  const std::string source = ::testing::TempDir() + "coherence_nodiscard_" + std::to_string(::getpid()) + ".cpp";
  for (const char *ignored : {"store.rebase(1, {});", "coherence::rebase(tx, 1, {});",
                              "coherence::execute(conn, {\"k\", \"1\"}, operate);"}) {
    std::ofstream(source) << "#include <coherence/coherence.hpp>\n"
                             "void f(pqxx::connection &conn, pqxx::work &tx, const coherence::Operate &operate) {\n"
                             "  coherence::Store store{conn};\n  (void)tx; (void)operate;\n  "
                          << ignored << "\n}\n";
    const Outcome built = syntax_check(source);
    EXPECT_NE(built.exit_code, 0) << ignored;
    EXPECT_NE(built.err.find("nodiscard"), std::string::npos) << ignored << "\n" << built.err;
  }
  // The same lines with the answer used compile.
  std::ofstream(source) << "#include <coherence/coherence.hpp>\n"
                           "int f(pqxx::connection &conn) {\n  coherence::Store store{conn};\n"
                           "  return static_cast<int>(store.rebase(1, {}).index());\n}\n";
  const Outcome used = syntax_check(source);
  EXPECT_EQ(used.exit_code, 0) << used.err;
  std::remove(source.c_str());
}

}  // namespace
}  // namespace coherence::test
