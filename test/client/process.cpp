// Child processes for the CLI and example tests, via posix_spawn: stdin and
// stderr through temporary files, stdout through a file or a pipe.
#include "process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <chrono>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace coherence::test {
namespace {

// A unique temporary file path for one stream of one child.
std::string temp_path(const char *what) {
  static int counter = 0;
  return ::testing::TempDir() + "coherence_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
         what;
}

// The whole content of a file.
std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts argv with the file actions given; throws if it cannot.
pid_t spawn(const std::vector<std::string> &argv, posix_spawn_file_actions_t &actions) {
  std::vector<char *> args;
  for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0)
    throw std::runtime_error("cannot start " + argv[0]);
  return pid;
}

// Waits for pid; its exit code, or 128 + signal like a shell.
int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// Files instead of pipes: no deadlock however much the child writes.
Outcome run_program(const std::vector<std::string> &argv, const std::string &stdin_text) {
  const std::string in = temp_path("in"), out = temp_path("out"), err = temp_path("err");
  std::ofstream(in) << stdin_text;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const pid_t pid = spawn(argv, actions);
  posix_spawn_file_actions_destroy(&actions);
  Outcome outcome{wait_for(pid), slurp(out), slurp(err)};
  for (const auto &path : {in, out, err}) ::unlink(path.c_str());
  return outcome;
}

// stdout through a pipe so lines can be read as the child flushes them.
Background::Background(const std::vector<std::string> &argv) : err_path_(temp_path("err")) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_ = spawn(argv, actions);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  out_ = fds[0];
}

// Kills a child the test did not stop (after a failed assertion).
Background::~Background() {
  if (pid_ > 0) stop(SIGKILL);
  ::close(out_);
  ::unlink(err_path_.c_str());
}

// Reads the pipe byte by byte (unbuffered, so poll() sees what is left):
// the child flushes each line.
std::string Background::read_line() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd fd{out_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
      ADD_FAILURE() << "no line from the child within 30 s; so far: \"" << line << "\"";
      return "";
    }
    char c;
    if (::read(out_, &c, 1) != 1 || c == '\n') return line;
    line += c;
  }
}

// Signals and reaps the child.
int Background::stop(int signal) {
  ::kill(pid_, signal);
  const int code = wait_for(pid_);
  pid_ = -1;
  return code;
}

// stderr, for failure messages.
std::string Background::err() const { return slurp(err_path_); }

}  // namespace coherence::test
