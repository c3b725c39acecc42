// The control socket: RUN_DIR/control.sock, one JSON request per line
// (request.hpp). A `capture` request turns its connection into the output of
// a capture port: after the reply line, the client reads pcap.
//
// Who may use it: the socket file is mode 0600 (whatever the umask), and each
// connection's peer is checked with SO_PEERCRED: only the user who started
// the engine and root are served; others are refused, counted and logged.
//
// Replies never block the event loop: they are written non-blocking, what the
// client has not read yet waits in a per-client buffer, and a client whose
// unread replies pass kMaxPendingOutput is disconnected and counted.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "control/engine.hpp"
#include "core/accept_pause.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"

namespace vnet {

class ControlServer {
 public:
  static constexpr std::size_t kMaxLine = 64 * 1024;
  static constexpr std::size_t kMaxPendingOutput = 4 << 20;

  // The engine's owner is the effective user at construction (before any
  // privilege drop): that user and root may connect.
  ControlServer(Engine& engine, const std::string& socket_path);
  // Serves on a socket a service manager already listens on (socket
  // activation, control/activation.hpp). Its file belongs to the manager,
  // which keeps listening after the engine stops: it is left in place.
  ControlServer(Engine& engine, const std::string& socket_path, UniqueFd listening);
  ~ControlServer();
  // Whether the socket came from a service manager (and its file stays).
  bool socket_is_managers() const { return !owns_socket_file_; }

 private:
  struct Client {
    UniqueFd fd;
    std::string in;
    std::string out;  // reply bytes the client has not taken yet
  };
  void start_serving();
  void accept_clients();
  UniqueFd accept_client();
  bool peer_allowed(int fd);
  void on_client(int fd, std::uint32_t events);
  void read_requests(Client& client, bool& keep);
  void handle_line(Client& client, std::string_view line, bool& keep);
  void queue_reply(Client& client, const nlohmann::json& response);
  bool flush(Client& client);
  void watch(Client& client);
  void drop(int fd);
  Client* find(int fd);

  Engine& engine_;
  std::string path_;
  uid_t owner_uid_;
  UniqueFd listen_fd_;
  bool owns_socket_file_ = true;
  // Held in reserve so that the owner can still connect (and see why) when
  // every other fd is taken: freed to accept one client at EMFILE.
  UniqueFd spare_fd_;
  std::unique_ptr<AcceptPause> pause_;
  std::vector<std::unique_ptr<Client>> clients_;
  log::RateLimited refused_log_;
  log::RateLimited over_cap_log_;
};

}  // namespace vnet
