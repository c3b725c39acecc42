// The control socket: RUN_DIR/control.sock, mode 0600, one JSON request per
// line (request.hpp). A `capture` request turns its connection into the
// output of a capture port: after the reply line, the client reads pcap.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "control/engine.hpp"
#include "core/fd.hpp"

namespace vnet {

class ControlServer {
 public:
  static constexpr std::size_t kMaxLine = 64 * 1024;

  ControlServer(Engine& engine, const std::string& socket_path);
  ~ControlServer();

 private:
  struct Client {
    UniqueFd fd;
    std::string in;
  };
  void accept_clients();
  void on_client(int fd);
  void handle_line(Client& client, std::string_view line, bool& keep);
  void drop(int fd);
  static void reply(int fd, const nlohmann::json& response);

  Engine& engine_;
  std::string path_;
  UniqueFd listen_fd_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace vnet
