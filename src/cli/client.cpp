#include "cli/client.hpp"

#include <signal.h>

#include <fstream>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/sockaddr.hpp"

namespace vnet::cli {

std::string resolve_run_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("VNET_RUN_DIR"); env && *env) return env;
  if (::geteuid() == 0) return "/run/vnet";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/vnet";
  // No guessable /tmp fallback: another user could create it first.
  throw UserError("no run dir: XDG_RUNTIME_DIR is not set; pass --run-dir DIR (or set VNET_RUN_DIR) to a "
                  "directory of your own, e.g. --run-dir ~/.vnet");
}

std::string control_socket_path(const std::string& run_dir) { return run_dir + "/control.sock"; }

ControlClient::ControlClient(const std::string& run_dir) {
  SockAddr addr = SockAddr::unix_path(control_socket_path(run_dir));
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw UserError(errno_text("socket"));
  if (::connect(fd_.get(), addr.get(), addr.length) != 0)
    throw UserError("vnet is not running in " + run_dir + " (start it with `vnet up`, or pass --run-dir)");
  timeval tv{30, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

nlohmann::json ControlClient::call(const nlohmann::json& request) {
  std::string line = request.dump() + "\n";
  if (::send(fd_.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    throw UserError(errno_text("cannot talk to vnet"));
  std::size_t nl;
  while ((nl = buffer_.find('\n')) == std::string::npos) {
    char buf[65536];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) throw UserError("vnet closed the control connection without an answer");
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
  auto reply = nlohmann::json::parse(buffer_.substr(0, nl), nullptr, false);
  buffer_.erase(0, nl + 1);
  if (reply.is_discarded() || !reply.is_object()) throw UserError("vnet sent an unreadable answer");
  if (!reply.value("ok", false)) throw UserError(reply.value("error", "request failed"));
  return reply;
}

std::string ControlClient::take_buffered() { return std::exchange(buffer_, {}); }

bool engine_running(const std::string& run_dir) {
  try {
    ControlClient c(run_dir);
    c.call({{"cmd", "net_list"}});
    return true;
  } catch (const UserError&) {
    return false;
  }
}

int engine_pid(const std::string& run_dir) {
  std::ifstream in(run_dir + "/vnet.pid");
  int pid = 0;
  in >> pid;
  return pid > 0 ? pid : 0;
}

bool process_alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

}  // namespace vnet::cli
