// Privilege separation: the engine, which parses guest traffic, runs as an
// unprivileged user; a small helper process forked before the drop keeps
// root and does, on request, only the opens the engine may no longer do:
//
//  - OpenTap: a TAP device, in the helper's namespace or in a named one
//    (/run/netns/NAME, entered with setns). Interface and namespace names
//    are limited to [A-Za-z0-9._-]; the kernel refuses a device that is not
//    a TAP or is in use by another process.
//  - BindUnix: a unix socket (stream or datagram), bound, returned unlistened.
//  - ConnectUnix: a stream socket connected to a listening unix socket (a
//    QEMU -netdev stream server the engine's user may not reach).
//  - CreateFile: a capture file, created or truncated, write-only.
//  - Cleanup: at engine exit, the run dir's pid file and unix sockets.
//
// Paths (BindUnix, ConnectUnix, CreateFile) are served only inside the run dir or a
// directory root named with `vnet up --allow-path DIR`: the directory is
// opened without following any symlink (openat2 RESOLVE_NO_SYMLINKS) and the
// last component is never followed either. An existing socket is replaced
// only if nothing answers on it; an existing capture file is truncated only
// if it is a regular file with a single link. Everything else is refused
// with an error the engine passes on to the user.
//
// The helper keeps only CAP_NET_ADMIN, CAP_SYS_ADMIN (setns) and
// CAP_DAC_OVERRIDE, sets no_new_privs and installs its own seccomp
// allowlist (core/isolation.hpp) before serving.
//
// The helper serves one request at a time over a SOCK_SEQPACKET socketpair
// (format: privsep/request.hpp) and exits when the engine closes its end or
// dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/isolation.hpp"
#include "privsep/request.hpp"

namespace vnet::privsep {

struct HelperPolicy {
  std::string run_dir;                    // absolute
  std::vector<std::string> allowed_dirs;  // absolute, from root's command line
};

// Normalises run_dir and --allow-path values (absolute, no trailing slash).
HelperPolicy make_policy(const std::string& run_dir, const std::vector<std::string>& allowed_dirs);

// nullopt if the policy lets the helper open path for the engine, else why not.
std::optional<std::string> refuse_path(const HelperPolicy& policy, const std::string& path);

// What the helper does for one request; out_fd is set when a reply carries one.
Reply handle_request(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd);

// The engine's end: blocking calls, one request in flight at a time (the
// engine is single-threaded). Throws UserError with the helper's message.
class Broker {
 public:
  Broker(UniqueFd sock, pid_t helper_pid);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  UniqueFd open_tap(const std::string& ifname, const std::string& netns);
  UniqueFd bind_unix(const std::string& path, SocketType type);
  UniqueFd connect_unix(const std::string& path);
  UniqueFd create_file(const std::string& path);
  void cleanup();

 private:
  UniqueFd call(const Request& request, bool want_fd);

  UniqueFd sock_;
  pid_t helper_pid_;
};

// Forks the helper (as root). The child never returns.
std::unique_ptr<Broker> start_helper(const HelperPolicy& policy,
                                     isolation::SeccompMode seccomp = isolation::SeccompMode::On);

// The process's broker, if privileges were separated; nullptr otherwise.
// Ports ask it for what they cannot open themselves. One per process, like
// the privileges it stands in for, so it is reached without being threaded
// through every constructor.
Broker* broker();
void set_broker(Broker* broker);

// Runs the helper's loop on sock until the engine goes away.
[[noreturn]] void serve(UniqueFd sock, const HelperPolicy& policy);

}  // namespace vnet::privsep
