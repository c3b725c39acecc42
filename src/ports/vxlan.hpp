// VXLAN (RFC 7348) tunnel endpoint: the network's frames travel to remote
// tunnel endpoints (Linux `vxlan` devices, Open vSwitch, another vnet) as UDP
// datagrams behind an 8-byte header naming the VNI, so networks on several
// hosts form one Ethernet segment.
//
//  - Unicast: `remote=H:P` (repeatable) lists the endpoints. Frames to a MAC
//    learned behind one endpoint go there; others (broadcast, unknown) go to
//    every endpoint, as head-end replication. Datagrams are accepted from
//    the listed endpoints' addresses only.
//  - Multicast: `group=G:P,dev=IF`; unknown and broadcast frames go to the
//    group, learned MACs to their endpoint's unicast address, and any group
//    member may send (as with a Linux vxlan device).
//
// Each datagram leaves from one of kSourcePorts sockets picked by a hash of
// the inner flow, so routers hashing on the outer UDP ports spread flows
// (RFC 7348 section 5) while a flow's frames stay in order. Over IPv4 the
// outer UDP checksum is zero unless udpcsum=on, as the RFC recommends; over
// IPv6 it is always computed. Frames bigger than the path allows are
// fragmented by the kernel (DF clear, as Linux vxlan does by default); the
// port warns once with the network MTU that avoids it.
#pragma once

#include <sys/socket.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sockaddr.hpp"
#include "core/datagram_batch.hpp"
#include "ports/fd_port.hpp"
#include "ports/vxlan_fdb.hpp"

namespace vnet {

struct VxlanConfig {
  std::uint32_t vni = 0;
  SockAddr local;                 // where endpoints send to us (default: any address, port 4789)
  std::vector<SockAddr> remotes;  // unicast endpoints
  std::optional<SockAddr> group;  // IPv4 multicast group:port, instead of remotes
  std::string dev;                // the interface the group is joined on
  bool udp_checksum = false;      // IPv4 outer checksum (IPv6: always)
};

class VxlanPort : public FdPort {
 public:
  static constexpr std::size_t kSourcePorts = 8;
  // Endpoints learned from a group are bounded like the MAC table.
  static constexpr std::size_t kMaxEndpoints = 256;

  VxlanPort(EventLoop& loop, Network& net, PortId id, VxlanConfig config);
  ~VxlanPort() override;

  std::string kind() const override { return "vxlan"; }
  std::string peer() const override;
  // Learned inner MACs (for tests and status).
  std::size_t learned_macs() const { return fdb_.size(); }

 protected:
  void on_readable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;

 private:
  // What a queued record carries ahead of the datagram: which socket sends
  // it and to which endpoint (kToGroup: the multicast group).
  struct Route {
    std::uint8_t sender;
    std::uint8_t pad;
    std::uint16_t endpoint;
    std::uint32_t pad2;
  };
  static constexpr std::uint16_t kToGroup = 0xffff;
  static constexpr std::size_t kRecordPrefix = sizeof(Route) + 8;

  void open_receiver();
  void open_group_receiver();
  void open_senders();
  void warn_about_path_mtu() const;
  void receive(int fd);
  void accept(wire::Bytes datagram, const sockaddr_storage& from);
  std::optional<std::uint16_t> endpoint_of(const sockaddr_storage& from);
  bool is_own(const sockaddr_storage& from) const;
  std::uint8_t sender_for(wire::Bytes frame) const;
  void queue_to(std::uint16_t endpoint, std::uint8_t sender, wire::Bytes frame);
  const SockAddr& destination(std::uint16_t endpoint) const;

  VxlanConfig config_;
  std::vector<SockAddr> endpoints_;  // the configured remotes, then those learned from the group
  VxlanFdb fdb_;
  std::vector<UniqueFd> senders_;
  std::vector<SockAddr> sender_addrs_;
  UniqueFd group_fd_;
  DatagramBatch batch_;
};

}  // namespace vnet
