#include "cli/daemon.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>

#include "cli/client.hpp"
#include "control/config.hpp"
#include "control/request.hpp"
#include "control/server.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace vnet::cli {
namespace {

void make_run_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw UserError(errno_text("cannot create run dir " + dir));
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw UserError(dir + " is not a directory");
}

// With no config file: the NAT network "default" (QEMU's user-mode layout:
// 10.0.2.0/24, gateway .2, DNS .3, first lease .15) and a QEMU stream socket.
Config default_config(const std::string& run_dir) {
  Config c;
  c.requests.push_back({{"cmd", "net_add"}, {"name", "default"}, {"mode", "nat"}});
  c.requests.push_back({{"cmd", "port_add"},
                        {"net", "default"},
                        {"spec", "stream,server=on,addr.type=unix,addr.path=" + run_dir + "/default.sock"}});
  return c;
}

void apply(Engine& engine, const Config& config) {
  for (const auto& request : config.requests) {
    auto reply = handle_request(engine, request);
    if (!reply.value("ok", false)) throw UserError(reply.value("error", "config request failed"));
  }
}

class PidFile {
 public:
  explicit PidFile(std::string path) : path_(std::move(path)) {
    std::ofstream(path_) << ::getpid() << "\n";
  }
  ~PidFile() { ::unlink(path_.c_str()); }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

// Builds everything, calls ready(), then runs until `vnet down` or a signal.
void run_engine(const std::string& run_dir, const Config& config, const privsep::SandboxOptions& sandbox_options,
                const std::function<void()>& ready) {
  EventLoop loop;
  Engine engine(loop);
  apply(engine, config);
  ControlServer server(engine, control_socket_path(run_dir));
  PidFile pid(run_dir + "/vnet.pid");
  // Start-up opens are done: from here on the engine runs unprivileged.
  auto sandbox = privsep::enter_sandbox(sandbox_options, run_dir);
  loop.handle_termination([&loop](int signo) {
    log::info("signal {}: shutting down", signo);
    loop.stop();
  });
  log::info("vnet ready (run dir {}, pid {})", run_dir, ::getpid());
  ready();
  loop.run();
  log::info("vnet stopped");
}

void print_banner(const std::string& run_dir) {
  std::printf("vnet is up (run dir %s)\n", run_dir.c_str());
  ControlClient client(run_dir);
  auto status = client.call({{"cmd", "status"}});
  for (const auto& net : status["networks"]) {
    std::string mode = net["mode"];
    if (const auto& nat = net["nat"]; nat.is_object())
      mode += " " + nat.value("net", "") + ", gateway " + nat.value("gateway", "") + ", dns " + nat.value("dns", "");
    std::printf("network %s (%s)\n", net["name"].get<std::string>().c_str(), mode.c_str());
    for (const auto& port : net["ports"]) {
      if (port["kind"] != "stream-listen") continue;
      std::string peer = port["peer"];
      if (peer.rfind("unix:", 0) != 0) continue;
      std::printf("  attach a QEMU guest with:\n    qemu-system-x86_64 ... -netdev stream,id=n0,server=off,"
                  "addr.type=unix,addr.path=%s -device virtio-net-pci,netdev=n0\n",
                  peer.substr(5).c_str());
    }
  }
  std::printf("see `vnet status`; stop with `vnet down`\n");
  std::fflush(stdout);
}

}  // namespace

int run_up(const UpOptions& options) {
  make_run_dir(options.run_dir);
  if (engine_running(options.run_dir))
    throw UserError("vnet is already running in " + options.run_dir + " (stop it with `vnet down`)");
  Config config = options.config_path.empty() ? default_config(options.run_dir) : load_config_file(options.config_path);
  std::string level = !options.log_level.empty() ? options.log_level : config.log_level;
  if (!level.empty()) {
    auto lv = log::parse_level(level);
    if (!lv) throw UserError("log level '" + level + "': expected debug, info, warn or error");
    log::set_level(*lv);
  }

  if (options.foreground) {
    run_engine(options.run_dir, config, options.sandbox, [&] {
      std::printf("vnet is up in the foreground (run dir %s); Ctrl-C stops it\n", options.run_dir.c_str());
      std::fflush(stdout);
    });
    return 0;
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw UserError(errno_text("pipe"));
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw UserError(errno_text("fork"));
  if (pid == 0) {
    read_end.reset();
    ::setsid();
    const std::string log_path = options.run_dir + "/vnet.log";
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int status = 0;
    try {
      run_engine(options.run_dir, config, options.sandbox, [&] {
        [[maybe_unused]] auto n = ::write(write_end.get(), "OK", 2);
        write_end.reset();
      });
    } catch (const std::exception& e) {
      log::error("{}", e.what());
      std::string msg = e.what();
      if (write_end) [[maybe_unused]] auto n = ::write(write_end.get(), msg.data(), msg.size());
      status = 1;
    }
    ::_exit(status);
  }
  write_end.reset();
  std::string answer;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  if (answer != "OK") {
    ::waitpid(pid, nullptr, 0);
    throw UserError(answer.empty() ? "vnet failed to start; see " + options.run_dir + "/vnet.log" : answer);
  }
  print_banner(options.run_dir);
  return 0;
}

}  // namespace vnet::cli
