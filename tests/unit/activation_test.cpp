// Socket activation of the control socket and the journal's log format: the
// values a service manager hands over, malformed and mismatched.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "control/activation.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/sockaddr.hpp"

namespace vnet {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(ListenFds, CountsOnlyWhatIsMeantForThisProcess) {
  EXPECT_EQ(parse_listen_fds(nullptr, nullptr, 100), 0) << "not socket-activated";
  EXPECT_EQ(parse_listen_fds("100", "1", 100), 1);
  EXPECT_EQ(parse_listen_fds("100", "0", 100), 0);
  EXPECT_EQ(parse_listen_fds("99", "1", 100), 0) << "inherited from a parent: not ours";
}

TEST(ListenFds, MalformedValuesAreClearErrors) {
  EXPECT_NE(error_of([] { parse_listen_fds("abc", "1", 100); }).find("LISTEN_PID=abc"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("", "1", 100); }).find("not a process id"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100x", "1", 100); }).find("not a process id"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("-100", "1", 100); }).find("not a process id"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100", nullptr, 100); }).find("LISTEN_FDS=(unset)"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100", "1 ", 100); }).find("LISTEN_FDS=1 "), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100", "-1", 100); }).find("not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100", "99999999999999999999", 100); }).find("not a number"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_listen_fds("100", "2", 100); }).find("vnet takes exactly one"), std::string::npos);
}

class AdoptControlSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vnet-activation-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  UniqueFd unix_socket(int type, const std::string& path, bool listen) {
    UniqueFd fd(::socket(AF_UNIX, type, 0));
    SockAddr addr = SockAddr::unix_path(path);
    EXPECT_EQ(::bind(fd.get(), addr.get(), addr.length), 0);
    if (listen) {
      EXPECT_EQ(::listen(fd.get(), 4), 0);
    }
    return fd;
  }

  std::string dir_;
};

TEST_F(AdoptControlSocket, TakesAListeningSocketBoundToTheControlPath) {
  const std::string path = dir_ + "/control.sock";
  UniqueFd fd = unix_socket(SOCK_STREAM, path, true);
  const int raw = fd.get();
  UniqueFd adopted = adopt_control_socket(fd.release(), path);
  EXPECT_EQ(adopted.get(), raw);
  EXPECT_TRUE(::fcntl(raw, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(raw, F_GETFD) & FD_CLOEXEC) << "not passed on to anything the engine starts";
}

TEST_F(AdoptControlSocket, SameFileUnderAnotherSpelling) {
  std::filesystem::create_directory_symlink(dir_, dir_ + "-link");
  UniqueFd fd = unix_socket(SOCK_STREAM, dir_ + "/control.sock", true);
  EXPECT_NO_THROW(adopt_control_socket(fd.release(), dir_ + "-link/control.sock").release());
  std::filesystem::remove(dir_ + "-link");
}

TEST_F(AdoptControlSocket, RefusesASocketBoundElsewhere) {
  UniqueFd fd = unix_socket(SOCK_STREAM, dir_ + "/other.sock", true);
  const std::string msg = error_of([&] { adopt_control_socket(fd.get(), dir_ + "/control.sock").release(); });
  EXPECT_NE(msg.find("is bound to " + dir_ + "/other.sock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("set ListenStream=" + dir_ + "/control.sock"), std::string::npos) << msg;
}

TEST_F(AdoptControlSocket, RefusesWhatIsNotAListeningUnixStreamSocket) {
  const std::string path = dir_ + "/control.sock";
  UniqueFd dgram = unix_socket(SOCK_DGRAM, path, false);
  EXPECT_NE(error_of([&] { adopt_control_socket(dgram.get(), path).release(); }).find("not a unix stream socket"),
            std::string::npos);
  ::unlink(path.c_str());
  UniqueFd idle = unix_socket(SOCK_STREAM, path, false);
  EXPECT_NE(error_of([&] { adopt_control_socket(idle.get(), path).release(); }).find("not listening"),
            std::string::npos);
  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_NE(error_of([&] { adopt_control_socket(tcp.get(), path).release(); }).find("not a unix stream socket"),
            std::string::npos);
  UniqueFd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_NE(error_of([&] { adopt_control_socket(file.get(), path).release(); }).find("not a unix stream socket"),
            std::string::npos);
}

TEST(JournalStream, MatchesOnlyItsOwnDeviceAndInode) {
  EXPECT_TRUE(log::journal_stream_is("8:1234", 8, 1234));
  EXPECT_FALSE(log::journal_stream_is("8:1235", 8, 1234)) << "stderr was redirected elsewhere";
  EXPECT_FALSE(log::journal_stream_is("9:1234", 8, 1234));
  for (const char* bad : {"", ":", "8", "8:", ":1234", "8:1234:", "8:12x4", "x:1234", "-8:1234", " 8:1234"})
    EXPECT_FALSE(log::journal_stream_is(bad, 8, 1234)) << bad;
}

TEST(JournalStream, LinesCarryTheirPriorityAndNoTimestamp) {
  char path[] = "/tmp/vnet-journal-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file);
  std::fflush(stderr);
  UniqueFd saved_stderr(::dup(STDERR_FILENO));
  ::dup2(file.get(), STDERR_FILENO);
  struct stat st{};
  ::fstat(file.get(), &st);
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
  const bool on = log::use_journal_format_if_stderr_is_journal();
  log::warn("journal line {}", 1);
  log::error("journal line {}", 2);
  ::setenv("JOURNAL_STREAM", "1:1", 1);
  const bool off = log::use_journal_format_if_stderr_is_journal();
  log::warn("plain line");
  ::unsetenv("JOURNAL_STREAM");
  std::fflush(stderr);
  ::dup2(saved_stderr.get(), STDERR_FILENO);
  EXPECT_TRUE(on);
  EXPECT_FALSE(off);
  std::string text(4096, '\0');
  text.resize(static_cast<std::size_t>(::pread(file.get(), text.data(), text.size(), 0)));
  ::unlink(path);
  const std::string journal_lines = "<4>journal line 1\n<3>journal line 2\n";
  EXPECT_EQ(text.substr(0, journal_lines.size()), journal_lines);
  EXPECT_NE(text.find(" warn  plain line\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace vnet
