// Accept loops at fd exhaustion.
//
// When accept() fails with EMFILE/ENFILE the connection stays queued, so a
// level-triggered listener is reported ready again at once: the loop spins
// at 100% CPU and logs a line per turn. Instead the listener is taken out of
// epoll's interest set for a short pause (queued clients wait in the
// backlog, nothing is lost) and one rate-limited line says why.
#pragma once

#include <cstdint>
#include <string>

#include "core/event_loop.hpp"
#include "core/log.hpp"

namespace vnet {

class AcceptPause {
 public:
  static constexpr Nanos kPause = 250 * kMillis;

  // listen_fd must be registered with `loop` for EPOLLIN while this lives.
  AcceptPause(EventLoop& loop, int listen_fd, std::string what);

  // After accept() failed with `err`: if it is a shortage of fds (or of
  // kernel memory), pauses the listener and returns true.
  bool pause_if_exhausted(int err);
  std::uint64_t pauses() const { return pauses_; }

 private:
  EventLoop& loop_;
  int fd_;
  std::string what_;
  Timer resume_;
  log::RateLimited log_{1, 10 * kSeconds};
  std::uint64_t pauses_ = 0;
};

}  // namespace vnet
