// The NAT gateway: a virtual host on a NAT network's switch, like the router
// of QEMU's -netdev user or VirtualBox's NAT Network. It answers ARP for the
// gateway and DNS addresses, learns the guests' MACs, answers pings to
// itself, and hands each packet for the outside to the protocol's
// translator (one file each: dhcp, dns, icmp, udp, tcp, tftp), which turns
// guest traffic into ordinary host sockets. No root is needed for any of it.
//
// What it does not do: IPv4 fragments are dropped (counted; guests learn the
// MTU by DHCP option 26), and IPv6 is not translated yet.
#pragma once

#include <memory>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "fabric/port.hpp"
#include "nat/guest_io.hpp"
#include "wire/ipv4.hpp"

namespace vnet::nat {

class DhcpServer;
class DnsForwarder;
class IcmpTranslator;
class UdpTranslator;
class TcpTranslator;
class TftpServer;
class PortForwarder;

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
  bool send_l4_in_place(wire::Ipv4Addr src, wire::Ipv4Addr dst, wire::IpProtocol proto, std::size_t len) override;
  bool send_udp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst, std::uint16_t dport,
                wire::Bytes payload) override;
  const wire::MacAddr* guest_mac(wire::Ipv4Addr guest) const override;

  wire::MacAddr mac() const { return mac_; }
  TcpTranslator& tcp() { return *tcp_; }
  UdpTranslator& udp() { return *udp_; }
  PortForwarder& portfwd() { return *portfwd_; }
  nlohmann::json status() const;

 protected:
  // Frames from the network to the gateway.
  void send_to_peer(wire::Bytes frame) override;

 private:
  void on_arp(wire::Bytes payload);
  void on_ipv4(const wire::MacAddr& src_mac, wire::Bytes payload);
  void on_udp(const wire::MacAddr& src_mac, const wire::Ipv4Packet& ip);
  void learn_guest(wire::Ipv4Addr ip, const wire::MacAddr& mac);
  void send_arp_request(wire::Ipv4Addr target);
  void emit_frame(const wire::MacAddr& dst, std::size_t l3_len);
  bool is_own_address(wire::Ipv4Addr a) const { return a == config_.gateway || a == config_.dns; }

  NatConfig config_;
  wire::MacAddr mac_;
  NatCounters nat_counters_;
  std::unordered_map<wire::Ipv4Addr, wire::MacAddr> arp_cache_;
  // One outgoing frame: Ethernet + IPv4 headers, then the l4 segment.
  std::unique_ptr<std::uint8_t[]> frame_;
  std::size_t frame_capacity_;

  std::unique_ptr<DhcpServer> dhcp_;
  std::unique_ptr<DnsForwarder> dns_;
  std::unique_ptr<IcmpTranslator> icmp_;
  std::unique_ptr<UdpTranslator> udp_;
  std::unique_ptr<TcpTranslator> tcp_;
  std::unique_ptr<TftpServer> tftp_;
  // Last, so it closes its sockets (and tells udp_) before the translators go.
  std::unique_ptr<PortForwarder> portfwd_;
};

}  // namespace vnet::nat
