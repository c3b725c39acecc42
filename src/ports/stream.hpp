// QEMU's stream transport: `-netdev stream` and the legacy `-net socket`
// listen/connect, both of which frame each Ethernet frame with a 4-byte
// big-endian length over a unix or TCP stream socket.
//
// A StreamListenerPort accepts any number of peers; each accepted connection
// becomes a StreamPort of its own (its parent is the listener) and is removed
// when the peer goes away. A StreamPort created with server=off connects out
// and, when the connection fails or ends, retries with exponential backoff
// (100 ms doubling to 5 s), the way a QEMU started before vnet expects.
//
// Framing errors (stream_framing.hpp) are counted; a length that cannot be a
// frame at all drops the connection, since the stream has lost its framing.
#pragma once

#include <memory>
#include <string>

#include "core/accept_pause.hpp"
#include "core/event_loop.hpp"
#include "ports/fd_port.hpp"
#include "core/sockaddr.hpp"
#include "ports/stream_framing.hpp"

namespace vnet {

class StreamPort : public FdPort {
 public:
  // An accepted connection.
  StreamPort(EventLoop& loop, Network& net, PortId id, UniqueFd fd, std::string peer);
  // An outgoing connection that reconnects.
  StreamPort(EventLoop& loop, Network& net, PortId id, SockAddr remote);

  std::string kind() const override { return reconnect_ ? "stream-client" : "stream"; }
  std::string peer() const override { return peer_; }
  std::string state() const override { return state_; }

 protected:
  void on_readable() override;
  void on_error() override;
  void on_writable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;

 private:
  void parse_frames();
  void lost(const std::string& why);
  void start_connect();
  void on_connect_result();

  std::unique_ptr<std::uint8_t[]> in_;
  std::size_t in_capacity_;
  std::size_t in_used_ = 0;
  StreamDeframer deframer_;
  std::size_t out_partial_ = 0;
  std::string peer_;
  std::string state_ = "connected";
  bool reconnect_ = false;
  bool connecting_ = false;
  SockAddr remote_;
  Nanos backoff_ = 0;
  Timer retry_timer_;
};

// A unix socket the engine's user may not reach (root's, in a directory only
// root may enter): the privileged helper connects `fd` to it, if its rules
// allow. false (errno EACCES) otherwise.
bool connected_by_helper(UniqueFd& fd, const SockAddr& remote);

// Opens a listening stream socket on `local` (through the privileged
// helper when only root may bind there); a stale unix socket file is
// replaced, one in use refused. Returns the unix path to unlink at the end
// ("" for inet). Throws UserError.
std::string open_stream_listener(UniqueFd& fd, const SockAddr& local);

class StreamListenerPort : public Port {
 public:
  StreamListenerPort(EventLoop& loop, Network& net, PortId id, SockAddr local);
  ~StreamListenerPort() override;

  std::string kind() const override { return "stream-listen"; }
  std::string peer() const override { return local_.to_string(); }
  std::string state() const override { return "listening"; }
  bool carries_frames() const override { return false; }

 protected:
  void send_to_peer(wire::Bytes) override {}

 private:
  void accept_all();

  SockAddr local_;
  UniqueFd fd_;
  std::string unlink_path_;
  std::unique_ptr<AcceptPause> pause_;  // set once fd_ is watched
  log::RateLimited accept_log_{20, 10 * kSeconds};  // peers connect as often as they like
};

}  // namespace vnet
