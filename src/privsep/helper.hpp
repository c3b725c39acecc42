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
//  - BindInet: an inet socket bound to a port below 1024, only for ports
//    root listed with `vnet up --allow-port PORT`.
//  - CreateFile: a capture file, created or truncated, write-only.
//  - ConnectDgram: connects the engine's own unix datagram socket, passed
//    along with the request, to a peer's socket the engine may not reach
//    (a QEMU `-netdev dgram` run by root); nothing comes back but the answer.
//  - OpenDir: an O_PATH handle on a directory (a TFTP root) whose parents
//    the engine's user may not enter; files beneath are opened by the engine.
//  - OpenPacket: a raw packet socket on a host interface (a bridged
//    network's uplink), only for interfaces root listed with
//    `vnet up --allow-if IF`.
//  - KernelNatUp/KernelNatDown: a vn-... host bridge with its address and
//    its nftables masquerade table (kernel-nat networks), and their removal.
//  - BridgeMember/BridgeUnmember: an interface joined to (taken out of) a
//    vn-... bridge: a vn-... TAP, made persistent if missing, or an
//    interface root allowed with --allow-if.
//  - SetAddress: an IPv4 address on a vn-... interface (host-only TAP).
//  - Cleanup: at engine exit, the run dir's pid file and unix sockets.
//
// Paths (BindUnix, ConnectUnix, ConnectDgram, CreateFile, OpenDir) are served only inside the run dir or a
// directory root named with `vnet up --allow-path DIR`: the directory is
// opened without following any symlink (openat2 RESOLVE_NO_SYMLINKS) and the
// last component is never followed either. An existing socket is replaced
// only if nothing answers on it; an existing capture file is truncated only
// if it is a regular file with a single link. Everything else is refused
// with an error the engine passes on to the user.
//
// The helper keeps only CAP_NET_ADMIN, CAP_NET_RAW (packet sockets), CAP_SYS_ADMIN (setns),
// CAP_NET_BIND_SERVICE, CAP_CHOWN (--group) and CAP_DAC_OVERRIDE, sets no_new_privs and installs its own seccomp
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
#include "core/sockaddr.hpp"
#include "privsep/request.hpp"

namespace vnet::privsep {

struct HelperPolicy {
  std::string run_dir;                    // absolute
  std::vector<std::string> allowed_dirs;  // absolute, from root's command line
  std::vector<std::uint16_t> allowed_low_ports;  // --allow-port
  std::vector<std::string> allowed_interfaces;   // --allow-if: bridged uplinks, kernel-nat members
  std::optional<gid_t> socket_group;             // --group: unix sockets 0660 and this group, else 0600
  std::vector<std::string> keep_on_cleanup;      // run-dir names the clean-up leaves (SandboxOptions::keep_files)
};

// Normalises run_dir and --allow-path values (absolute, no trailing slash).
HelperPolicy make_policy(const std::string& run_dir, const std::vector<std::string>& allowed_dirs,
                         const std::vector<std::uint16_t>& allowed_low_ports = {},
                         const std::vector<std::string>& allowed_interfaces = {});

// nullopt if the policy lets the helper open path for the engine, else why not.
std::optional<std::string> refuse_path(const HelperPolicy& policy, const std::string& path);

// What the helper does for one request; out_fd is set when a reply carries one.
Reply handle_request(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd);
// in_fd: the descriptor that came with the request (ConnectDgram), else -1.
Reply handle_request(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd, int in_fd);

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
  UniqueFd bind_inet(const std::string& address, std::uint16_t port, SocketType type);
  UniqueFd create_file(const std::string& path);
  UniqueFd open_dir(const std::string& path);
  // Connects the engine's datagram socket sock to the unix socket at path.
  void connect_dgram(int sock, const std::string& path);
  UniqueFd open_packet(const std::string& ifname, const std::string& netns);
  void kernel_nat_up(const std::string& bridge, const std::string& address_cidr, const std::string& uplink);
  void kernel_nat_down(const std::string& bridge);
  void bridge_member(const std::string& bridge, const std::string& ifname, bool join);
  void set_address(const std::string& ifname, const std::string& address_cidr);
  void cleanup();

 private:
  UniqueFd call(const Request& request, bool want_fd, int attach_fd = -1);

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

// After the engine's own bind of local failed (errno still set): if that was
// for lack of privilege (a unix path in root's directory, a port below 1024)
// and there is a helper, replaces fd with the helper's bound socket and
// returns true; otherwise false, to report the engine's own error. Throws
// UserError with the helper's reason if it refuses.
bool bind_through_helper(UniqueFd& fd, const SockAddr& local, SocketType type);

// Runs the helper's loop on sock until the engine goes away.
[[noreturn]] void serve(UniqueFd sock, const HelperPolicy& policy);

}  // namespace vnet::privsep
