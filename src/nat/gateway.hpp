// The NAT gateway: a virtual host on a NAT network's switch, like the router
// of QEMU's -netdev user or VirtualBox's NAT Network. It answers ARP for the
// gateway and DNS addresses, answers pings to itself, and hands each packet
// for the outside to the protocol's translator (one file each: dhcp, dns,
// icmp, udp, tcp, tftp), which turns guest traffic into ordinary host
// sockets. No root is needed for any of it.
//
// This file is the dispatcher. Who a frame comes from is the neighbour
// table's business (nat/neigh: the port the switch says it entered on, its
// source MAC, and the addresses bound to that guest); a frame whose source
// address belongs to another guest or lies outside the network is dropped
// before any translator sees it. Where a packet may go is the forwarding
// policy's (nat/fwd), asked after the flow lookup so replies of port
// forwards pass.
//
// Replies sent from inside send_to_peer() (ARP, pings, DHCP, TCP segments)
// enter the switch again from inside its ingress; network.hpp says why that
// is safe and bounds the depth.
//
// IPv6 (NatConfig::ipv6) takes the same path: on_ipv6 walks the extension
// headers (wire/ipv6: bounded; what it cannot honour is counted in
// drop_ipv6_extension), hands neighbour discovery (ICMPv6 133-137) and
// DHCPv6 (UDP 547) to their handlers before any source check (they speak
// from link-local and unspecified addresses), then checks the source
// against the neighbour table like IPv4 and gives TCP, UDP and ICMPv6 to
// the same translators. Replies leave through send_l4_in_place, which
// builds an IPv6 header for IPv6 addresses.
//
// What it does not do: fragments of either family are dropped (counted;
// guests learn the MTU by DHCP option 26 and router advertisements).
#pragma once

#include <memory>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "fabric/port.hpp"
#include "nat/fwd.hpp"
#include "nat/guest_io.hpp"
#include "nat/neigh.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"

namespace vnet::nat {

class DhcpServer;
class DnsForwarder;
class IcmpTranslator;
class UdpTranslator;
class TcpTranslator;
class TftpServer;
class PortForwarder;
class Ipv6ControlOut;
class NdpServer;
class Dhcp6Server;

class NatGateway : public Port, public GuestIo {
 public:
  NatGateway(EventLoop& loop, Network& net, PortId id, NatConfig config);
  ~NatGateway() override;

  std::string kind() const override { return "nat"; }
  std::string peer() const override;

  // GuestIo
  EventLoop& loop() override { return loop_; }
  const NatConfig& config() const override { return config_; }
  NatCounters& counters() override { return nat_counters_; }
  wire::MutBytes l4_buffer() override;
  bool send_l4_in_place(wire::IpAddr src, wire::IpAddr dst, wire::IpProtocol proto, std::size_t len) override;
  bool send_udp(wire::IpAddr src, std::uint16_t sport, wire::IpAddr dst, std::uint16_t dport,
                wire::Bytes payload) override;
  const wire::MacAddr* guest_mac(wire::IpAddr guest) const override;
  FlowTable& flows() override { return flows_; }
  std::size_t tcp_offload_room(const wire::IpAddr& guest) const override;
  wire::MutBytes l4_offload_buffer() override;
  bool send_tcp_offloaded(const wire::IpAddr& src, const wire::IpAddr& dst, std::size_t len,
                          std::uint16_t mss) override;
  bool l4_checksum_offloaded() const override { return checksum_offloaded_; }
  std::size_t guest_queue_room(const wire::IpAddr& guest) const override;

  // Guests' TSO segments stay whole into the host sockets (offload.hpp).
  bool accepts_offload() const override { return true; }
  bool runs_network_servers() const override { return true; }

  wire::MacAddr mac() const { return mac_; }
  TcpTranslator& tcp() { return *tcp_; }
  UdpTranslator& udp() { return *udp_; }
  PortForwarder& portfwd() { return *portfwd_; }
  DhcpServer& dhcp() { return *dhcp_; }
  const NeighTable& neighbours() const { return neigh_; }
  nlohmann::json status() const;

 protected:
  // Frames from the network to the gateway.
  void send_to_peer(wire::Bytes frame) override;
  // An IPv4 TCP segment with checksum offload or TSO is handled whole;
  // anything else offloaded is cut into plain frames first.
  void send_offloaded(wire::Bytes frame, const Offload& offload) override;

 private:
  void on_arp(PortId port, const wire::MacAddr& src_mac, wire::Bytes payload);
  void on_ipv4(PortId port, const wire::MacAddr& src_mac, wire::Bytes payload);
  void on_udp(PortId port, const wire::MacAddr& src_mac, const wire::IpAddr& src, const wire::IpAddr& dst,
              wire::Bytes l4);
  void on_icmp(const wire::Ipv4Packet& ip);
  void on_tcp(const wire::IpAddr& src, const wire::IpAddr& dst, wire::Bytes l4);
  // IPv6 input (see the top of this file).
  void on_ipv6(PortId port, const wire::MacAddr& src_mac, wire::Bytes payload);
  void on_icmp6(const wire::Ipv6Packet& ip, wire::Bytes icmp);
  // Hook points of the IPv6 control plane: neighbour discovery (ICMPv6
  // router/neighbour solicitations and advertisements, redirects) and
  // DHCPv6 server messages, with the whole ICMPv6 message or UDP datagram.
  void on_ndp(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Packet& ip, wire::Bytes icmp);
  void on_dhcp6(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Packet& ip, wire::Bytes udp);
  // A packet for an IPv6 guest whose MAC is unknown: ask the network who
  // has it (the IPv6 counterpart of send_arp_request).
  void solicit_neighbour(const wire::Ipv6Addr& target);
  void start_ipv6_control();
  bool send_ipv6(const wire::Ipv6Addr& src, const wire::Ipv6Addr& dst, wire::IpProtocol proto, std::size_t len);
  void count_refusal(FwdRefusal why);
  void sweep_neighbours();
  void send_arp_request(wire::Ipv4Addr target);
  // Sends the frame whose IP header starts at l3 (right before the l4
  // buffer) and is l3_len bytes long with its payload.
  void emit_frame(const wire::MacAddr& dst, wire::EtherType type, std::uint8_t* l3, std::size_t l3_len,
                  const Offload* offload = nullptr);
  bool ipv4_dst_mac(wire::Ipv4Addr dst, wire::MacAddr& mac);
  bool ipv6_dst_mac(const wire::Ipv6Addr& dst, wire::MacAddr& mac);
  bool takes_whole(wire::Bytes frame, const Offload& offload) const;
  bool is_own_address(wire::Ipv4Addr a) const { return a == config_.gateway || a == config_.dns; }
  bool is_own_address(const wire::Ipv6Addr& a) const { return a == config_.gateway6 || a == config_.dns6; }

  NatConfig config_;
  wire::MacAddr mac_;
  NatCounters nat_counters_;
  NeighTable neigh_;
  Timer neigh_sweep_;
  // One outgoing frame: room for Ethernet + IPv6 headers, then the l4
  // segment at a fixed offset (an IPv4 frame starts 20 bytes in).
  // frame_capacity_ is what the MTU allows; the buffer is larger, room for
  // a TCP super-segment (l4_offload_buffer()).
  std::unique_ptr<std::uint8_t[]> frame_;
  std::size_t frame_capacity_;
  bool checksum_offloaded_ = false;  // see l4_checksum_offloaded()
  FlowTable flows_{*this};  // before the translators, which use it

  std::unique_ptr<DhcpServer> dhcp_;
  std::unique_ptr<DnsForwarder> dns_;
  std::unique_ptr<IcmpTranslator> icmp_;
  std::unique_ptr<UdpTranslator> udp_;
  std::unique_ptr<TcpTranslator> tcp_;
  std::unique_ptr<TftpServer> tftp_;
  // IPv6 control plane: neighbour discovery and router advertisements
  // (null with IPv6 off), DHCPv6 (null with --dhcp6 off too).
  std::unique_ptr<Ipv6ControlOut> control6_;
  std::unique_ptr<NdpServer> ndp_;
  std::unique_ptr<Dhcp6Server> dhcp6_;
  // Last, so it closes its sockets (and tells udp_) before the translators go.
  std::unique_ptr<PortForwarder> portfwd_;
};

}  // namespace vnet::nat
