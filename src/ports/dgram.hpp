// QEMU's datagram transports: `-netdev dgram` (unix or UDP, unicast or
// multicast) and the legacy `-net socket,mcast=` / `udp=`: one Ethernet frame
// per datagram, no header.
//
// Input is read in batches with recvmmsg; output is queued and sent in
// batches with sendmmsg once per event-loop round. On a multicast bus every
// member hears every frame, including its own: vnet sends from a second
// socket with a port of its own, so its own frames are recognised by source
// address and not fed back into the network (which would make the switch
// see its guests' MACs move to the bus).
#pragma once

#include <sys/socket.h>

#include <memory>
#include <optional>
#include <vector>

#include "core/datagram_batch.hpp"
#include "ports/fd_port.hpp"
#include "core/sockaddr.hpp"

namespace vnet {

struct DgramConfig {
  std::optional<SockAddr> local;  // bound address (unicast) or group:port to join
  SockAddr remote;                // where frames are sent
  bool multicast = false;
  std::string mcast_interface;    // IPv4 address of the interface to join on
};

class DgramPort : public FdPort {
 public:
  DgramPort(EventLoop& loop, Network& net, PortId id, DgramConfig config);
  ~DgramPort() override;

  std::string kind() const override { return config_.multicast ? "mcast" : "dgram"; }
  std::string peer() const override { return config_.remote.to_string(); }

 protected:
  void on_readable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;

 private:
  void open_unicast();
  void open_multicast();
  bool is_own_frame(const sockaddr_storage& source) const;
  bool connect_through_helper();

  DgramConfig config_;
  UniqueFd send_fd_;         // multicast only: the socket frames leave from
  SockAddr self_;            // its address, to drop our own looped-back frames
  DatagramBatch batch_;
  std::string unlink_path_;
  bool connected_ = false;         // to the unix peer, by the privileged helper
  Nanos last_helper_connect_{};
};

}  // namespace vnet
