#include "core/accept_pause.hpp"

#include <cerrno>
#include <cstring>

namespace vnet {

AcceptPause::AcceptPause(EventLoop& loop, int listen_fd, std::string what)
    : loop_(loop), fd_(listen_fd), what_(std::move(what)), resume_(loop, [this] { loop_.modify(fd_, EPOLLIN); }) {}

bool AcceptPause::pause_if_exhausted(int err) {
  if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) return false;
  loop_.modify(fd_, 0);
  resume_.arm_in(kPause);
  ++pauses_;
  log_.warn("{}: accept: {}; not accepting for {} ms (raise the fd limit: ulimit -n)", what_, std::strerror(err),
            kPause / kMillis);
  return true;
}

}  // namespace vnet
