// The seccomp filter, installed in a forked child: what the engine uses
// works, an unlisted call fails with EPERM, a call only an attacker makes
// kills the process.
#include <gtest/gtest.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <functional>

#include "core/isolation.hpp"

namespace vnet::isolation {
namespace {

// Runs body in a child under the filter; returns its wait status. The body
// returns the exit code (0 = every expectation held, else which one failed).
int run_filtered(SeccompMode mode, const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      set_no_new_privs();
      install_seccomp(mode, false);
    } catch (...) {
      ::_exit(100);
    }
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(Seccomp, AllowsWhatTheEngineUsesAndRefusesTheRest) {
  const int status = run_filtered(SeccompMode::On, [] {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) != 0) return 1;
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (udp < 0) return 2;
    const int ping = ::socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);  // EACCES outside ping_group_range is fine
    if (ping < 0 && errno == EPERM) return 3;
    if (::socket(AF_PACKET, SOCK_RAW, 0) >= 0 || errno != EPERM) return 4;
    if (::socket(AF_NETLINK, SOCK_RAW, 9 /* NETLINK_AUDIT */) >= 0 || errno != EPERM) return 5;
    if (::socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0) >= 0 || errno != EPERM) return 6;
    char c = 'x';
    if (::ioctl(udp, TIOCSTI, &c) == 0 || errno != EPERM) return 7;
    int queued = 0;
    if (::ioctl(udp, FIONREAD, &queued) != 0) return 8;
    if (::getpriority(PRIO_PROCESS, 0) == -1 && errno == EPERM) return 0;  // unlisted: EPERM
    return 9;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Seccomp, ExecKillsTheProcess) {
  if (kSanitized) GTEST_SKIP() << "sanitizer builds let execve through for the symbolizer";
  const int status = run_filtered(SeccompMode::On, [] {
    char* const argv[] = {const_cast<char*>("true"), nullptr};
    ::execve("/bin/true", argv, environ);
    return 1;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(Seccomp, LogModeLetsUnlistedCallsThroughButStillKills) {
  const int status = run_filtered(SeccompMode::Log, [] {
    errno = 0;
    ::getpriority(PRIO_PROCESS, 0);
    if (errno == EPERM) return 1;
    ::syscall(SYS_unshare, 0);
    return 2;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(Seccomp, ParsesModes) {
  EXPECT_EQ(parse_seccomp_mode("on"), SeccompMode::On);
  EXPECT_EQ(parse_seccomp_mode("log"), SeccompMode::Log);
  EXPECT_EQ(parse_seccomp_mode("off"), SeccompMode::Off);
  EXPECT_FALSE(parse_seccomp_mode("ON"));
  EXPECT_FALSE(parse_seccomp_mode(""));
}

TEST(ProcessSecurity, ReadsItsOwnStatus) {
  const auto s = read_process_security();
  EXPECT_EQ(s.uid, static_cast<long>(::getuid()));
  EXPECT_EQ(s.cap_eff.size(), 16u);
  EXPECT_GE(s.seccomp, 0);
}

}  // namespace
}  // namespace vnet::isolation
