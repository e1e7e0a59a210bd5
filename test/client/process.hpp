// Running a built or compiled program from a test, with its output captured.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <sys/types.h>

namespace coherence::test {

// What a finished program did.
struct Outcome {
  int exit_code;
  std::string out, err;
};

// Runs argv[0] with the given arguments and stdin text, waits for it.
Outcome run_program(const std::vector<std::string> &argv, const std::string &stdin_text = "");

// A program left running with its stdout readable line by line (stderr goes
// to a file), for commands that follow live.
class Background {
 public:
  explicit Background(const std::vector<std::string> &argv);
  ~Background();
  Background(const Background &) = delete;
  Background &operator=(const Background &) = delete;

  // The next line of stdout without its newline; "" (and a test failure)
  // when none comes within 30 s.
  std::string read_line();
  // Sends `signal` and returns the exit code.
  int stop(int signal);
  // What it wrote to stderr so far.
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string err_path_;
};

}  // namespace coherence::test
