// The proxy's single poll() loop over all connection pairs.
#include "proxy.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace coherence::test {
namespace {

// A TCP socket connected to 127.0.0.1:port, or -1.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Writes all of `data`; false when the peer is gone.
bool send_all(int fd, const char *data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A client's simple-protocol Query message for COMMIT: 'Q', length, "COMMIT\0".
bool holds_commit(const char *data, std::size_t size) {
  static const char commit[] = {'Q', 0, 0, 0, 11, 'C', 'O', 'M', 'M', 'I', 'T', 0};
  return size >= sizeof commit && std::memcmp(data + size - sizeof commit, commit, sizeof commit) == 0;
}

}  // namespace

// Binds first so conninfo() is valid once the constructor returns.
Proxy::Proxy() {
  const char *pgport = std::getenv("PGPORT");
  if (!pgport) throw std::runtime_error("proxy: PGPORT is not set");
  server_port_ = std::atoi(pgport);
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener_, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 || ::listen(listener_, 64) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr *>(&address), &length) != 0)
    throw std::runtime_error("proxy: cannot listen");
  port_ = ntohs(address.sin_port);
  if (::pipe(wake_) != 0) throw std::runtime_error("proxy: pipe");
  thread_ = std::thread([this] { serve(); });
}

// Wakes the loop and waits for it.
Proxy::~Proxy() {
  const char byte = 1;
  [[maybe_unused]] const auto written = ::write(wake_[1], &byte, 1);
  thread_.join();
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

// TCP, so the connection goes through the proxy and not the Unix socket.
std::string Proxy::conninfo(const std::string &dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname;
}

// Pairs (client, server); a pair is closed as a whole.
void Proxy::serve() {
  struct Pair {
    int client, server;
    bool cut_at_reply = false;  // a COMMIT passed on: drop its reply and close
  };
  std::vector<Pair> pairs;
  const auto close_pair = [](Pair &pair) {
    ::close(pair.client);
    ::close(pair.server);
    pair.client = pair.server = -1;
  };
  char buffer[65536];
  for (;;) {
    if (refusing_)
      for (auto &pair : pairs) close_pair(pair);
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listener_, POLLIN, 0}};
    for (const auto &pair : pairs)
      if (pair.client >= 0) {
        fds.push_back({pair.client, POLLIN, 0});
        fds.push_back({pair.server, POLLIN, 0});
      }
    if (::poll(fds.data(), fds.size(), 100) < 0) continue;
    if (fds[0].revents) return;
    if (fds[1].revents) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        ++accepted_;
        const int server = refusing_ ? -1 : connect_to(server_port_);
        if (server < 0)
          ::close(client);
        else
          pairs.push_back({client, server});
      }
    }
    std::size_t at = 2;
    for (auto &pair : pairs) {
      if (pair.client < 0) continue;
      const pollfd &from_client = fds[at++], &from_server = fds[at++];
      if (from_client.revents) {
        const ssize_t n = ::recv(pair.client, buffer, sizeof buffer, 0);
        if (n <= 0) {
          close_pair(pair);
          continue;
        }
        const auto size = static_cast<std::size_t>(n);
        const OnCommit action = holds_commit(buffer, size) ? on_commit_.exchange(OnCommit::forward) : OnCommit::forward;
        if (action == OnCommit::drop_before) {
          ++cuts_;
          close_pair(pair);
          continue;
        }
        if (!send_all(pair.server, buffer, size)) {
          close_pair(pair);
          continue;
        }
        pair.cut_at_reply = action == OnCommit::drop_after;
      }
      if (from_server.revents) {
        const ssize_t n = ::recv(pair.server, buffer, sizeof buffer, 0);
        // The reply to a COMMIT proves the server committed: the client
        // never sees it.
        if (pair.cut_at_reply) {
          ++cuts_;
          close_pair(pair);
          continue;
        }
        if (n <= 0 || !send_all(pair.client, buffer, static_cast<std::size_t>(n))) close_pair(pair);
      }
    }
    pairs.erase(std::remove_if(pairs.begin(), pairs.end(), [](const Pair &pair) { return pair.client < 0; }),
                pairs.end());
  }
}

}  // namespace coherence::test
