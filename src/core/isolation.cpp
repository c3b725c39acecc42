#include "core/isolation.hpp"

#include <cap-ng.h>
#include <pwd.h>
#include <seccomp.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace vnet::isolation {
namespace {

// Everything the engine does after start-up, by way of glibc: the event loop
// (epoll, timerfd, signalfd, eventfd), sockets of every transport (stream,
// dgram, ICMP ping sockets, batched sendmmsg/recvmmsg), file opens for TFTP
// (openat2) and capture files, memory management, time and randomness, and
// what AddressSanitizer needs when the engine is built with it.
constexpr const char* kAllowed[] = {
    // I/O on fds
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "close", "close_range",
    "lseek", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "fsync", "fdatasync", "ftruncate", "sendfile",
    "splice",
    // files (TFTP, capture files, /proc/self for status, unix socket paths)
    "open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "unlink", "unlinkat", "chmod", "fchmod", "fchmodat",
    "chown", "fchown", "fchownat", "lchown", "getcwd", "umask", "flock", "fallocate", "mkdir", "mkdirat",
    "rename", "renameat", "renameat2",
    // sockets
    "socketpair", "bind", "listen", "connect", "accept", "accept4", "getsockname", "getpeername",
    "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    // event loop
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
    "select", "pselect6", "timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd", "signalfd4",
    "eventfd", "eventfd2",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigpending", "sigaltstack",
    "restart_syscall", "tgkill", "gettid", "getpid", "getppid",
    // memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "mlock", "munlock",
    // time, randomness, identity, limits
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "getrandom",
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "uname", "sysinfo",
    "getrlimit", "prlimit64", "getrusage", "times", "sched_getaffinity", "sched_yield",
    // threads and process end (glibc, std::thread, sanitizers)
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "arch_prctl", "prctl", "exit",
    "exit_group", "wait4", "waitid", "membarrier",
};

// The privileged helper's calls: its socketpair, the opens and binds it
// does for the engine (openat2, setns, TUN ioctls), nftables' netlink
// (libnftables waits with select), listing the run dir at clean-up, its
// log lines, malloc.
constexpr const char* kHelperAllowed[] = {
    "read", "write", "writev", "close", "lseek", "fcntl", "dup", "dup2", "dup3", "open", "openat", "openat2",
    "stat", "fstat", "lstat", "newfstatat", "statx", "getdents", "getdents64", "unlinkat", "unlink",
    "ftruncate", "fchownat", "fchmodat", "setns", "socketpair", "bind", "connect", "recvfrom", "recvmsg", "sendto", "sendmsg",
    "getsockopt", "setsockopt", "getsockname", "select", "pselect6", "poll", "ppoll",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "restart_syscall", "brk", "mmap", "munmap", "mremap",
    "mprotect", "madvise", "clock_gettime", "gettimeofday", "getrandom", "getpid", "gettid", "getuid", "geteuid",
    "futex", "exit", "exit_group", "sigaltstack", "sched_getaffinity", "prctl", "getrlimit", "prlimit64",
    "readlink", "uname", "tgkill",
};

// Calls that only an attacker who took over the engine would make: the whole
// process dies at once rather than getting an error to work around.
constexpr const char* kFatal[] = {
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
    "chroot", "setns", "unshare", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "reboot",
    "swapon", "swapoff", "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "fsconfig", "move_mount",
    "open_tree", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "capset",
    "iopl", "ioperm", "quotactl", "acct", "settimeofday", "clock_settime", "adjtimex", "sethostname",
    "setdomainname", "personality", "kcmp", "pidfd_getfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
};

// Test builds only (ASan/UBSan): the leak check at exit stops the world
// from a cloned tracer, and a report runs the symbolizer. Without these a
// sanitizer finding would die half-reported.
constexpr const char* kSanitizerNeeds[] = {"clone", "ptrace", "execve"};

struct FilterDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

void add_rule(scmp_filter_ctx ctx, std::uint32_t action, const char* name) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return;  // not a call on this architecture
  if (int rc = seccomp_rule_add(ctx, action, nr, 0); rc != 0)
    throw UserError("seccomp: cannot add a rule for " + std::string(name) + ": " + std::strerror(-rc));
}

void add_socket_rules(scmp_filter_ctx ctx, bool kernel_net) {
  // Sockets of the families the engine uses only: unix, IPv4, IPv6, and
  // route netlink (glibc's getaddrinfo asks it which families the host has).
  // The rest (AF_PACKET, AF_ALG, AF_VSOCK, AF_XDP, other netlink families...)
  // is kernel attack surface the engine has no use for.
  const int nr = seccomp_syscall_resolve_name("socket");
  auto allow = [&](int rc) {
    if (rc != 0) throw UserError("seccomp: cannot add a socket rule: " + std::string(std::strerror(-rc)));
  };
  for (int family : {AF_UNIX, AF_INET, AF_INET6})
    allow(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))));
  allow(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(AF_NETLINK)),
                         SCMP_A2(SCMP_CMP_EQ, static_cast<scmp_datum_t>(NETLINK_ROUTE))));
  if (!kernel_net) return;
  // Whoever sets up the root-only modes (privsep/kernel_net.hpp): a bridged
  // uplink's packet socket and nftables' netlink.
  allow(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(AF_PACKET))));
  allow(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(AF_NETLINK)),
                         SCMP_A2(SCMP_CMP_EQ, static_cast<scmp_datum_t>(NETLINK_NETFILTER))));
}

void add_ioctl_rules(scmp_filter_ctx ctx, bool opens_taps_itself) {
  // ioctl only with the requests the engine makes: terminal and socket
  // queries, an interface's index by name (a VXLAN group's device),
  // non-blocking and close-on-exec flags, and the TAP set-up when
  // it opens TAPs itself. TIOCSTI (typing into a terminal) and other device
  // ioctls stay out.
  std::vector<unsigned long> requests = {FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, TCGETS, TIOCGWINSZ, TIOCOUTQ, SIOCGIFINDEX};
  if (opens_taps_itself)
    requests.insert(requests.end(), {TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD, SIOCGIFFLAGS, SIOCSIFFLAGS,
                                     TUNSETPERSIST, SIOCBRADDBR, SIOCBRDELBR, SIOCBRADDIF, SIOCBRDELIF, SIOCSIFADDR,
                                     SIOCSIFNETMASK});
  const int nr = seccomp_syscall_resolve_name("ioctl");
  for (unsigned long request : requests)
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A1(SCMP_CMP_EQ, request)); rc != 0)
      throw UserError("seccomp: cannot add an ioctl rule: " + std::string(std::strerror(-rc)));
}

}  // namespace

std::optional<SeccompMode> parse_seccomp_mode(std::string_view text) {
  if (text == "on") return SeccompMode::On;
  if (text == "log") return SeccompMode::Log;
  if (text == "off") return SeccompMode::Off;
  return std::nullopt;
}

const char* to_string(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::On: return "on";
    case SeccompMode::Log: return "log";
    case SeccompMode::Off: return "off";
  }
  return "?";
}

UserIds lookup_user(const std::string& name) {
  passwd pw{};
  passwd* found = nullptr;
  std::string buf(16384, '\0');
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    throw UserError("no user named '" + name + "' (pass --user with an existing user, or --user root to keep root)");
  return {name, found->pw_uid, found->pw_gid};
}

std::string default_user() {
  passwd pw{};
  passwd* found = nullptr;
  std::string buf(16384, '\0');
  if (::getpwnam_r("vnet", &pw, buf.data(), buf.size(), &found) == 0 && found) return "vnet";
  return "nobody";
}

void drop_privileges(const std::optional<UserIds>& user) {
  capng_clear(CAPNG_SELECT_ALL);
  if (user) {
    if (capng_change_id(static_cast<int>(user->uid), static_cast<int>(user->gid),
                        static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING)) != 0)
      throw UserError("cannot switch to user " + user->name);
    // A drop that can be undone is no drop.
    if (::setuid(0) == 0 || ::getuid() != user->uid || ::geteuid() != user->uid || ::getegid() != user->gid)
      throw UserError("user switch to " + user->name + " did not stick");
  } else if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE && capng_apply(CAPNG_SELECT_CAPS) != 0) {
    throw UserError("cannot drop capabilities");
  }
  // No ptrace or core dumps by the same user (the leak checker of a
  // sanitizer build needs to ptrace its own process, so not there).
  if (!kSanitized) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

void set_no_new_privs() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw UserError(errno_text("PR_SET_NO_NEW_PRIVS"));
}

void install_helper_seccomp(SeccompMode mode) {
  if (mode == SeccompMode::Off) return;
  const std::uint32_t unlisted = mode == SeccompMode::Log ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM);
  Filter filter(seccomp_init(unlisted));
  if (!filter) throw UserError("seccomp: cannot create a filter");
  seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  for (const char* name : kHelperAllowed) add_rule(filter.get(), SCMP_ACT_ALLOW, name);
  for (const char* name : kFatal) {
    const std::string_view call = name;
    if (call == "setns" || (kSanitized && (call == "execve" || call == "ptrace"))) continue;
    add_rule(filter.get(), SCMP_ACT_KILL_PROCESS, name);
  }
  if (kSanitized)
    for (const char* name : kSanitizerNeeds) add_rule(filter.get(), SCMP_ACT_ALLOW, name);
  add_socket_rules(filter.get(), true);
  add_ioctl_rules(filter.get(), true);
  if (int rc = seccomp_load(filter.get()); rc != 0)
    throw UserError("seccomp: cannot load the helper's filter: " + std::string(std::strerror(-rc)));
}

void install_seccomp(SeccompMode mode, bool opens_taps_itself) {
  if (mode == SeccompMode::Off) return;
  const std::uint32_t unlisted = mode == SeccompMode::Log ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM);
  Filter filter(seccomp_init(unlisted));
  if (!filter) throw UserError("seccomp: cannot create a filter");
  seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  for (const char* name : kAllowed) add_rule(filter.get(), SCMP_ACT_ALLOW, name);
  for (const char* name : kFatal) {
    const std::string_view call = name;
    if (opens_taps_itself && call == "setns") continue;
    if (kSanitized && (call == "execve" || call == "ptrace")) continue;  // see kSanitizerNeeds
    add_rule(filter.get(), SCMP_ACT_KILL_PROCESS, name);
  }
  if (opens_taps_itself) add_rule(filter.get(), SCMP_ACT_ALLOW, "setns");
  if (kSanitized)
    for (const char* name : kSanitizerNeeds) add_rule(filter.get(), SCMP_ACT_ALLOW, name);
  add_socket_rules(filter.get(), opens_taps_itself);
  add_ioctl_rules(filter.get(), opens_taps_itself);
  if (int rc = seccomp_load(filter.get()); rc != 0)
    throw UserError("seccomp: cannot load the filter: " + std::string(std::strerror(-rc)));
}

ProcessSecurity read_process_security() {
  ProcessSecurity s;
  std::ifstream in("/proc/self/status");
  std::string line;
  auto value = [&line](std::size_t skip) { return line.substr(skip); };
  while (std::getline(in, line)) {
    try {
      if (line.rfind("Uid:", 0) == 0) s.uid = std::stol(value(4));  // real uid comes first
      else if (line.rfind("Gid:", 0) == 0) s.gid = std::stol(value(4));
      else if (line.rfind("CapEff:", 0) == 0) s.cap_eff = value(line.find_first_not_of(" \t", 7));
      else if (line.rfind("NoNewPrivs:", 0) == 0) s.no_new_privs = std::stoi(value(11));
      else if (line.rfind("Seccomp:", 0) == 0) s.seccomp = std::stoi(value(8));
    } catch (const std::exception&) {
    }
  }
  return s;
}

}  // namespace vnet::isolation
