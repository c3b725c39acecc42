#include "privsep/helper.hpp"

#include <cap-ng.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"
#include "privsep/kernel_net.hpp"
#include "privsep/tap_open.hpp"

namespace vnet::privsep {
namespace {

Broker* g_broker = nullptr;  // see broker(): one per process, set at start-up only

// A refusal or failure the engine passes on to the user.
struct Refused {
  std::string message;
  int error = 0;
};

std::string normalise_dir(const std::string& dir) {
  std::string out = std::filesystem::absolute(dir).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::pair<std::string, std::string> split(const std::string& path) {
  const auto slash = path.rfind('/');
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// The directory, opened without following a symlink anywhere in its path.
UniqueFd open_dir(const std::string& dir, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_DIRECTORY | O_CLOEXEC);
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, dir.c_str(), &how, sizeof how)));
  if (!fd) throw Refused{errno_text("directory " + dir + " (symlinks are not followed)"), errno};
  return fd;
}

// "/proc/self/fd/N/name": the name inside an already opened directory, for
// calls that take only a path (bind, connect).
std::string in_dir_path(int dir_fd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) throw Refused{"socket path too long: " + path, ENAMETOOLONG};
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  return sun;
}

int socket_type(SocketType type) { return type == SocketType::Dgram ? SOCK_DGRAM : SOCK_STREAM; }

UniqueFd bind_unix(const HelperPolicy& policy, const std::string& path, SocketType type) {
  if (auto why = refuse_path(policy, path)) throw Refused{*why, EACCES};
  const auto [dir, name] = split(path);
  UniqueFd dir_fd = open_dir(dir, O_PATH);
  const sockaddr_un sun = unix_address(in_dir_path(dir_fd.get(), name));
  struct stat st{};
  if (::fstatat(dir_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw Refused{path + " exists and is not a socket", EEXIST};
    // A stale socket from an earlier run is replaced; a live one is not.
    UniqueFd probe(::socket(AF_UNIX, socket_type(type) | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0 || errno != ECONNREFUSED)
      throw Refused{"unix socket " + path + " is in use by another process", EADDRINUSE};
    ::unlinkat(dir_fd.get(), name.c_str(), 0);
  }
  UniqueFd sock(::socket(AF_UNIX, socket_type(type) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock || ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0)
    throw Refused{errno_text("cannot bind " + path), errno};
  // Owner-only (0600), as the engine makes the sockets it binds itself;
  // `--group` widens it to one group.
  if (policy.socket_group && ::fchownat(dir_fd.get(), name.c_str(), static_cast<uid_t>(-1), *policy.socket_group,
                                        AT_SYMLINK_NOFOLLOW) != 0)
    throw Refused{errno_text("cannot give unix socket " + path + " to its group"), errno};
  if (::fchmodat(dir_fd.get(), name.c_str(), policy.socket_group ? 0660 : 0600, 0) != 0)
    throw Refused{errno_text("cannot set the mode of unix socket " + path), errno};
  return sock;
}

// The address of the peer socket at path, after the path rule; the name is
// reached through its directory opened without symlinks, which dir_fd keeps
// open for as long as the address (a /proc/self/fd path) is used.
sockaddr_un peer_socket_address(const HelperPolicy& policy, const std::string& path, UniqueFd& dir_fd) {
  if (auto why = refuse_path(policy, path)) throw Refused{*why, EACCES};
  const auto [dir, name] = split(path);
  dir_fd = open_dir(dir, O_PATH);
  struct stat st{};
  if (::fstatat(dir_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    throw Refused{errno_text("connect " + path), errno};
  if (!S_ISSOCK(st.st_mode)) throw Refused{path + " is not a socket", ENOTSOCK};
  return unix_address(in_dir_path(dir_fd.get(), name));
}

UniqueFd connect_unix(const HelperPolicy& policy, const std::string& path) {
  UniqueFd dir_fd;
  const sockaddr_un sun = peer_socket_address(policy, path, dir_fd);
  // Non-blocking: a peer with a full backlog gives EAGAIN, and the engine
  // retries as it does for any failed connect; a unix connect never pends.
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock || ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0)
    throw Refused{errno_text("connect " + path), errno};
  return sock;
}

// Connects the engine's own datagram socket (passed along with the request)
// to a peer's socket in a directory the engine's user may not enter, or
// that it may not write to (a QEMU run by root): once connected, the engine
// sends without naming the path again.
void connect_dgram(const HelperPolicy& policy, const std::string& path, int engine_sock) {
  if (engine_sock < 0) throw Refused{"no socket came with the request", EINVAL};
  int domain = 0, type = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(engine_sock, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX ||
      (len = sizeof type, ::getsockopt(engine_sock, SOL_SOCKET, SO_TYPE, &type, &len)) != 0 || type != SOCK_DGRAM)
    throw Refused{"the socket that came with the request is not a unix datagram socket", EINVAL};
  UniqueFd dir_fd;
  const sockaddr_un sun = peer_socket_address(policy, path, dir_fd);
  if (::connect(engine_sock, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0)
    throw Refused{errno_text("connect " + path), errno};
}

UniqueFd bind_inet(const HelperPolicy& policy, const std::string& address, const std::string& port_text,
                   SocketType type) {
  const auto port = parse_low_port(port_text);
  if (!port) throw Refused{"port " + port_text + ": only ports below 1024 go through the helper", EINVAL};
  if (std::find(policy.allowed_low_ports.begin(), policy.allowed_low_ports.end(), *port) ==
      policy.allowed_low_ports.end())
    throw Refused{"port " + port_text + " is below 1024 and was not allowed with `vnet up --allow-port " +
                      port_text + "`",
                  EACCES};
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (auto* in = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(*port);
    len = sizeof *in;
  } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
             ::inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(*port);
    len = sizeof *in6;
  } else {
    throw Refused{"bad address " + address, EINVAL};
  }
  UniqueFd sock(::socket(ss.ss_family, socket_type(type) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (sock) ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!sock || ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0)
    throw Refused{errno_text("cannot bind " + address + " port " + port_text), errno};
  return sock;
}

// An O_PATH handle on a directory the engine reads files beneath (a TFTP
// root whose parents only root may enter). It opens nothing by itself: each
// file is still opened by the engine, as its own user, beneath this handle.
UniqueFd open_read_dir(const HelperPolicy& policy, const std::string& path) {
  // Checked as if for a file directly inside it.
  if (auto why = refuse_path(policy, path + "/x")) throw Refused{*why, EACCES};
  return open_dir(path, O_PATH);
}

UniqueFd create_file(const HelperPolicy& policy, const std::string& path) {
  if (auto why = refuse_path(policy, path)) throw Refused{*why, EACCES};
  const auto [dir, name] = split(path);
  UniqueFd dir_fd = open_dir(dir, O_PATH);
  UniqueFd fd(::openat(dir_fd.get(), name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                       0644));
  if (!fd) throw Refused{errno_text("cannot write capture file " + path), errno};
  // Truncate only what is plainly ours to truncate: not a device, not a
  // hard link to a file elsewhere.
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
    throw Refused{path + " is not a plain file with a single link", EPERM};
  if (::ftruncate(fd.get(), 0) != 0) throw Refused{errno_text("cannot truncate " + path), errno};
  return fd;
}

void cleanup_run_dir(const HelperPolicy& policy) {
  UniqueFd dir_fd = open_dir(policy.run_dir, O_RDONLY);
  DIR* dir = ::fdopendir(::dup(dir_fd.get()));
  if (!dir) throw Refused{errno_text("cannot list " + policy.run_dir), errno};
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    struct stat st{};
    if (std::find(policy.keep_on_cleanup.begin(), policy.keep_on_cleanup.end(), name) != policy.keep_on_cleanup.end())
      continue;
    if (::fstatat(dir_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISSOCK(st.st_mode) || (name == "vnet.pid" && S_ISREG(st.st_mode))) ::unlinkat(dir_fd.get(), name.c_str(), 0);
  }
  ::closedir(dir);
}

// One message with at most one descriptor attached (SCM_RIGHTS), either way.
bool send_with_fd(int sock, std::span<const std::uint8_t> bytes, int fd) {
  iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  while ((n = ::sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(bytes.size());
}

// Receives one message into buf (MSG_TRUNC: the result may exceed its
// size); a descriptor that came along lands in fd, anything else attached
// is closed.
ssize_t recv_with_fd(int sock, std::span<std::uint8_t> buf, UniqueFd& fd) {
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC)) < 0 && errno == EINTR) {
  }
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int received;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      fd.reset(received);
    }
  return n;
}

// A host interface the engine may take (a packet socket, a bridge member):
// one vnet made, or one root named with --allow-if.
void require_interface(const HelperPolicy& policy, const std::string& ifname, bool owned_ok) {
  if (owned_ok && is_owned_ifname(ifname)) return;
  if (std::find(policy.allowed_interfaces.begin(), policy.allowed_interfaces.end(), ifname) !=
      policy.allowed_interfaces.end())
    return;
  throw Refused{"interface " + ifname + " was not allowed: start vnet with `vnet up --allow-if " + ifname + "`", EPERM};
}

void handle_kernel_net(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd) {
  switch (request.op) {
    case Op::OpenPacket:
      require_interface(policy, request.a, false);
      out_fd = open_packet_socket(request.a, request.b);
      return;
    case Op::KernelNatUp: {
      // kernel_net.cpp refuses any bridge or address target not named vn-...
      const auto space = request.b.find(' ');
      kernel_nat_up(request.a, request.b.substr(0, space),
                    space == std::string::npos ? std::string() : request.b.substr(space + 1));
      return;
    }
    case Op::KernelNatDown:
      kernel_nat_down(request.a);
      return;
    case Op::BridgeMember:
      require_interface(policy, request.b, true);
      bridge_add_member(request.a, request.b);
      return;
    case Op::BridgeUnmember:
      require_interface(policy, request.b, true);
      bridge_remove_member(request.a, request.b);
      return;
    case Op::SetAddress:
      set_interface_address(request.a, request.b);
      return;
    default:
      throw Refused{"not a kernel network request", EINVAL};
  }
}

// The helper needs only: TAP, bridge and nftables set-up (NET_ADMIN),
// packet sockets (NET_RAW), entering namespaces
// (SYS_ADMIN), ports below 1024 (NET_BIND_SERVICE), `--group` on sockets
// (CHOWN) and root's own directories (DAC_OVERRIDE for a run dir made
// by another admin tool); everything else goes.
void narrow_helper_capabilities() {
  capng_clear(CAPNG_SELECT_BOTH);
  capng_updatev(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE, CAP_DAC_OVERRIDE, CAP_CHOWN, -1);
  capng_apply(CAPNG_SELECT_BOTH);
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

}  // namespace

HelperPolicy make_policy(const std::string& run_dir, const std::vector<std::string>& allowed_dirs,
                         const std::vector<std::uint16_t>& allowed_low_ports,
                         const std::vector<std::string>& allowed_interfaces) {
  HelperPolicy p;
  p.allowed_low_ports = allowed_low_ports;
  for (const auto& name : allowed_interfaces) {
    if (!valid_ifname(name)) throw UserError("--allow-if " + name + ": not an interface name");
    p.allowed_interfaces.push_back(name);
  }
  p.run_dir = normalise_dir(run_dir);
  for (const auto& d : allowed_dirs) {
    if (d.empty()) throw UserError("--allow-path: empty directory");
    p.allowed_dirs.push_back(normalise_dir(d));
  }
  return p;
}

std::optional<std::string> refuse_path(const HelperPolicy& policy, const std::string& path) {
  if (!valid_absolute_path(path, kMaxMessage))
    return "path " + path + " must be absolute without '.' or '..' components";
  const std::string dir = split(path).first;
  auto beneath = [&dir](const std::string& allowed) {
    return dir == allowed || (allowed == "/" ? true : dir.rfind(allowed + "/", 0) == 0);
  };
  if (beneath(policy.run_dir)) return std::nullopt;
  for (const auto& allowed : policy.allowed_dirs)
    if (beneath(allowed)) return std::nullopt;
  return "the engine's user may not write " + path +
         " and the privileged helper opens paths only in the run dir or a directory given with "
         "`vnet up --allow-path DIR`";
}

Reply handle_request(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd) {
  return handle_request(policy, request, out_fd, -1);
}

Reply handle_request(const HelperPolicy& policy, const Request& request, UniqueFd& out_fd, int in_fd) {
  try {
    if (in_fd >= 0 && request.op != Op::ConnectDgram) throw Refused{"unexpected descriptor with the request", EINVAL};
    switch (request.op) {
      case Op::OpenTap: out_fd = open_tap_device(request.a, request.b); break;
      case Op::BindUnix: out_fd = bind_unix(policy, request.a, request.socket_type); break;
      case Op::ConnectUnix: out_fd = connect_unix(policy, request.a); break;
      case Op::CreateFile: out_fd = create_file(policy, request.a); break;
      case Op::BindInet: out_fd = bind_inet(policy, request.a, request.b, request.socket_type); break;
      case Op::OpenDir: out_fd = open_read_dir(policy, request.a); break;
      case Op::ConnectDgram: connect_dgram(policy, request.a, in_fd); break;
      case Op::Cleanup: cleanup_run_dir(policy); break;
      case Op::OpenPacket:
      case Op::KernelNatUp:
      case Op::KernelNatDown:
      case Op::BridgeMember:
      case Op::BridgeUnmember:
      case Op::SetAddress: handle_kernel_net(policy, request, out_fd); break;
    }
    return {true, 0, {}};
  } catch (const Refused& r) {
    return {false, r.error, r.message};
  } catch (const UserError& e) {
    return {false, 0, e.what()};
  }
}

void serve(UniqueFd sock, const HelperPolicy& policy) {
  std::uint8_t buf[kMaxMessage + 1];
  for (;;) {
    UniqueFd in_fd;
    const ssize_t n = recv_with_fd(sock.get(), buf, in_fd);
    if (n == 0) ::_exit(0);  // the engine is gone
    if (n < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    std::string why;
    const auto size = std::min(static_cast<std::size_t>(n), sizeof buf);
    auto request = static_cast<std::size_t>(n) > kMaxMessage ? std::nullopt : parse_request({buf, size}, why);
    UniqueFd fd;
    Reply reply;
    if (!request) {
      log::warn("privileged helper: malformed request refused: {}", why.empty() ? "oversize" : why);
      reply = {false, EINVAL, "malformed request: " + why};
    } else {
      reply = handle_request(policy, *request, fd, in_fd.get());
      if (!reply.ok) log::warn("privileged helper: refused: {}", reply.message);
    }
    send_with_fd(sock.get(), encode(reply), fd.get());
  }
}

Broker::Broker(UniqueFd sock, pid_t helper_pid) : sock_(std::move(sock)), helper_pid_(helper_pid) {}

Broker::~Broker() {
  sock_.reset();  // the helper sees EOF and exits
  if (helper_pid_ > 0) ::waitpid(helper_pid_, nullptr, 0);
}

UniqueFd Broker::call(const Request& request, bool want_fd, int attach_fd) {
  if (!send_with_fd(sock_.get(), encode(request), attach_fd)) throw UserError(errno_text("privileged helper"));
  std::uint8_t buf[kMaxMessage];
  UniqueFd fd;
  const ssize_t n = recv_with_fd(sock_.get(), buf, fd);
  if (n <= 0) throw UserError("the privileged helper has exited");
  auto reply = parse_reply({buf, std::min(static_cast<std::size_t>(n), sizeof buf)});
  if (!reply) throw UserError("the privileged helper sent an unreadable reply");
  if (!reply->ok) throw UserError(reply->message);
  if (want_fd && !fd) throw UserError("the privileged helper sent no file descriptor");
  return fd;
}

UniqueFd Broker::open_tap(const std::string& ifname, const std::string& netns) {
  return call({Op::OpenTap, SocketType::None, ifname, netns}, true);
}

UniqueFd Broker::bind_unix(const std::string& path, SocketType type) {
  return call({Op::BindUnix, type, path, {}}, true);
}

UniqueFd Broker::connect_unix(const std::string& path) {
  return call({Op::ConnectUnix, SocketType::Stream, path, {}}, true);
}

UniqueFd Broker::bind_inet(const std::string& address, std::uint16_t port, SocketType type) {
  return call({Op::BindInet, type, address, std::to_string(port)}, true);
}

UniqueFd Broker::create_file(const std::string& path) { return call({Op::CreateFile, SocketType::None, path, {}}, true); }

void Broker::connect_dgram(int sock, const std::string& path) {
  call({Op::ConnectDgram, SocketType::Dgram, path, {}}, false, sock);
}

UniqueFd Broker::open_dir(const std::string& path) { return call({Op::OpenDir, SocketType::None, path, {}}, true); }

UniqueFd Broker::open_packet(const std::string& ifname, const std::string& netns) {
  return call({Op::OpenPacket, SocketType::None, ifname, netns}, true);
}

void Broker::kernel_nat_up(const std::string& bridge, const std::string& address_cidr, const std::string& uplink) {
  call({Op::KernelNatUp, SocketType::None, bridge, uplink.empty() ? address_cidr : address_cidr + " " + uplink}, false);
}

void Broker::kernel_nat_down(const std::string& bridge) { call({Op::KernelNatDown, SocketType::None, bridge, {}}, false); }

void Broker::bridge_member(const std::string& bridge, const std::string& ifname, bool join) {
  call({join ? Op::BridgeMember : Op::BridgeUnmember, SocketType::None, bridge, ifname}, false);
}

void Broker::set_address(const std::string& ifname, const std::string& address_cidr) {
  call({Op::SetAddress, SocketType::None, ifname, address_cidr}, false);
}

void Broker::cleanup() { call({Op::Cleanup, SocketType::None, {}, {}}, false); }

std::unique_ptr<Broker> start_helper(const HelperPolicy& policy, isolation::SeccompMode seccomp) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw UserError(errno_text("socketpair"));
  UniqueFd engine_end(sv[0]), helper_end(sv[1]);
  const pid_t engine_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw UserError(errno_text("fork"));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != engine_pid) ::_exit(0);
    ::prctl(PR_SET_NAME, "vnet-privsep", 0, 0, 0);
    // Ctrl-C on a foreground engine reaches the whole process group: the
    // helper outlives the engine's shutdown (it still has to clean up the
    // run dir) and ends on EOF instead.
    for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(signo, SIG_IGN);
    // Only the socketpair and stderr (the log) stay open.
    if (::dup2(helper_end.get(), 3) != 3) ::_exit(1);
    ::close_range(4, ~0U, 0);
    (void)helper_end.release();
    (void)engine_end.release();
    ::umask(077);
    narrow_helper_capabilities();
    try {
      isolation::install_helper_seccomp(seccomp);
    } catch (const UserError& e) {
      log::error("privileged helper: {}", e.what());
      ::_exit(1);
    }
    serve(UniqueFd(3), policy);
  }
  return std::make_unique<Broker>(std::move(engine_end), pid);
}

Broker* broker() { return g_broker; }

bool bind_through_helper(UniqueFd& fd, const SockAddr& local, SocketType type) {
  const int err = errno;
  if (!g_broker) return false;
  if (local.family() == AF_UNIX && (err == EACCES || err == EADDRINUSE)) {
    fd = g_broker->bind_unix(reinterpret_cast<const sockaddr_un*>(&local.storage)->sun_path, type);
    return true;
  }
  if ((local.family() == AF_INET || local.family() == AF_INET6) && err == EACCES && local.port() > 0 &&
      local.port() < 1024) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = local.family() == AF_INET
                           ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&local.storage)->sin_addr)
                           : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&local.storage)->sin6_addr);
    ::inet_ntop(local.family(), addr, text, sizeof text);
    fd = g_broker->bind_inet(text, local.port(), type);
    return true;
  }
  errno = err;
  return false;
}

void set_broker(Broker* b) { g_broker = b; }

}  // namespace vnet::privsep
