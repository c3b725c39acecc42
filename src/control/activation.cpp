#include "control/activation.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/error.hpp"

namespace vnet {
namespace {

// A whole decimal number, nothing before or after it.
bool parse_decimal(std::string_view text, long& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= 0;
}

int socket_option(int fd, int option) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return -1;
  return value;
}

// The path a unix socket is bound to ("" for an unbound or abstract one).
std::string bound_path(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  const std::size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
  if (max == 0 || addr.sun_path[0] == '\0') return {};
  return std::string(addr.sun_path, ::strnlen(addr.sun_path, max));
}

// The same file under two spellings (a symlinked directory, a relative run dir).
bool same_file(const std::string& a, const std::string& b) {
  if (a == b) return true;
  struct stat sa{}, sb{};
  return !a.empty() && ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

int parse_listen_fds(const char* listen_pid, const char* listen_fds, pid_t self) {
  if (!listen_pid) return 0;
  long pid = 0;
  if (!parse_decimal(listen_pid, pid))
    throw UserError(std::string("LISTEN_PID=") + listen_pid + ": not a process id (set by the service manager "
                    "for socket activation; unset it to start vnet by hand)");
  if (pid != self) return 0;  // meant for a process we descend from
  long count = 0;
  if (!listen_fds || !parse_decimal(listen_fds, count))
    throw UserError(std::string("LISTEN_FDS=") + (listen_fds ? listen_fds : "(unset)") +
                    ": not a number of sockets (socket activation)");
  if (count > 1)
    throw UserError("the service manager passed " + std::to_string(count) +
                    " sockets; vnet takes exactly one, its control socket: declare one ListenStream= in the "
                    ".socket unit");
  return static_cast<int>(count);
}

UniqueFd adopt_control_socket(int fd, const std::string& expected_path) {
  const std::string what = "the socket passed by the service manager (fd " + std::to_string(fd) + ")";
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw UserError(errno_text(what));
  if (!S_ISSOCK(st.st_mode) || socket_option(fd, SO_DOMAIN) != AF_UNIX ||
      socket_option(fd, SO_TYPE) != SOCK_STREAM)
    throw UserError(what + " is not a unix stream socket: the control socket is ListenStream=" + expected_path);
  if (socket_option(fd, SO_ACCEPTCONN) != 1)
    throw UserError(what + " is not listening (Accept=no is the mode vnet expects)");
  const std::string path = bound_path(fd);
  if (!same_file(path, expected_path))
    throw UserError(what + " is bound to " + (path.empty() ? "no file" : path) + ", but vnet's clients look for " +
                    expected_path + ": set ListenStream=" + expected_path + " in the .socket unit, or pass " +
                    "--run-dir to the directory that holds the socket");
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    throw UserError(errno_text(what));
  return UniqueFd(fd);
}

UniqueFd take_activated_control_socket(const std::string& expected_path) {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  const int count = parse_listen_fds(pid, fds, ::getpid());
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (count == 0) return {};
  return adopt_control_socket(kListenFdsStart, expected_path);
}

}  // namespace vnet
