#include "nat/gateway.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "fabric/network.hpp"
#include "nat/dhcp.hpp"
#include "nat/dns.hpp"
#include "nat/icmp.hpp"
#include "nat/portfwd.hpp"
#include "nat/tcp.hpp"
#include "nat/tftp.hpp"
#include "nat/udp.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::size_t kEthIpHeaders = EthernetFrame::kHeaderLen + Ipv4Packet::kMinHeaderLen;
constexpr std::uint16_t kDhcpServerPort = 67;
constexpr std::uint16_t kDnsPort = 53;

// 52:55 followed by the gateway's IPv4 address, the convention of QEMU's
// user-mode stack, so guests moving from -netdev user see a familiar MAC.
MacAddr gateway_mac(Ipv4Addr gw) { return MacAddr{{0x52, 0x55, gw.octets[0], gw.octets[1], gw.octets[2], gw.octets[3]}}; }

}  // namespace

NatGateway::NatGateway(EventLoop& loop, Network& net, PortId id, NatConfig config)
    : Port(loop, net, id),
      config_(std::move(config)),
      mac_(gateway_mac(config_.gateway)),
      frame_capacity_(kEthIpHeaders + std::max<std::size_t>(config_.mtu, 576)),
      dhcp_(std::make_unique<DhcpServer>(*this)),
      dns_(std::make_unique<DnsForwarder>(*this)),
      icmp_(std::make_unique<IcmpTranslator>(*this)),
      udp_(std::make_unique<UdpTranslator>(*this)),
      tcp_(std::make_unique<TcpTranslator>(*this)),
      tftp_(std::make_unique<TftpServer>(*this)),
      portfwd_(std::make_unique<PortForwarder>(*this, *tcp_, *udp_)) {
  frame_.reset(new std::uint8_t[frame_capacity_]);
  for (const auto& [mac, addr] : config_.reservations) dhcp_->reserve(mac, addr);
}

NatGateway::~NatGateway() = default;

std::string NatGateway::peer() const {
  return config_.net.to_string() + " gw " + config_.gateway.to_string() + " dns " + config_.dns.to_string();
}

MutBytes NatGateway::l4_buffer() {
  return {frame_.get() + kEthIpHeaders, frame_capacity_ - kEthIpHeaders};
}

const MacAddr* NatGateway::guest_mac(Ipv4Addr guest) const {
  auto it = arp_cache_.find(guest);
  return it == arp_cache_.end() ? nullptr : &it->second;
}

bool NatGateway::send_l4_in_place(Ipv4Addr src, Ipv4Addr dst, IpProtocol proto, std::size_t len) {
  MacAddr dst_mac;
  if (dst.is_broadcast() || dst == config_.net.broadcast()) {
    dst_mac = MacAddr::broadcast();
  } else if (const MacAddr* m = guest_mac(dst)) {
    dst_mac = *m;
  } else {
    nat_counters_.drop_unknown_guest++;
    send_arp_request(dst);
    return false;
  }
  Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = proto;
  ip.payload_len = static_cast<std::uint16_t>(len);
  ip.emit({frame_.get() + EthernetFrame::kHeaderLen, Ipv4Packet::kMinHeaderLen});
  emit_frame(dst_mac, Ipv4Packet::kMinHeaderLen + len);
  return true;
}

bool NatGateway::send_udp(Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst, std::uint16_t dport, Bytes payload) {
  MutBytes l4 = l4_buffer();
  if (payload.size() + UdpPacket::kHeaderLen > l4.size()) return false;
  // Payloads may already sit in l4_buffer (built in place): move, not copy.
  std::memmove(l4.data() + UdpPacket::kHeaderLen, payload.data(), payload.size());
  UdpRepr udp{sport, dport, static_cast<std::uint16_t>(payload.size())};
  udp.emit(l4.first(UdpPacket::kHeaderLen + payload.size()), IpAddr(src), IpAddr(dst));
  return send_l4_in_place(src, dst, IpProtocol::Udp, UdpPacket::kHeaderLen + payload.size());
}

void NatGateway::emit_frame(const MacAddr& dst, std::size_t l3_len) {
  EthernetRepr eth{dst, mac_, EtherType::Ipv4, std::nullopt};
  eth.emit({frame_.get(), EthernetFrame::kHeaderLen});
  std::size_t len = EthernetFrame::kHeaderLen + l3_len;
  // Old stacks (PXE ROMs, DOS) drop frames under the Ethernet minimum of 60 bytes.
  if (len < 60) {
    std::memset(frame_.get() + len, 0, 60 - len);
    len = 60;
  }
  from_peer({frame_.get(), len});
}

void NatGateway::send_to_peer(Bytes frame) {
  counters_.tx_frames++;
  counters_.tx_bytes += frame.size();
  auto eth = EthernetFrame::parse(frame);
  if (!eth) {
    nat_counters_.drop_malformed++;
    return;
  }
  const MacAddr dst = eth->dst();
  if (dst != mac_ && !dst.is_broadcast()) return;  // flooded unicast for someone else
  switch (eth->ethertype()) {
    case EtherType::Arp: on_arp(eth->payload()); break;
    case EtherType::Ipv4: on_ipv4(eth->src(), eth->payload()); break;
    default: break;  // IPv6 and others: not translated (yet)
  }
}

void NatGateway::learn_guest(Ipv4Addr ip, const MacAddr& mac) {
  if (ip.is_unspecified() || !config_.net.contains(ip) || is_own_address(ip) || mac.is_multicast()) return;
  auto [it, inserted] = arp_cache_.try_emplace(ip, mac);
  if (!inserted) it->second = mac;
}

void NatGateway::on_arp(Bytes payload) {
  auto pkt = ArpPacket::parse(payload);
  if (!pkt) {
    nat_counters_.drop_malformed++;
    return;
  }
  auto arp = ArpRepr::parse(*pkt);
  if (!arp) {
    nat_counters_.drop_malformed++;
    return;
  }
  learn_guest(arp->sender_ip, arp->sender_mac);
  if (arp->op != ArpOp::Request || !is_own_address(arp->target_ip)) return;
  ArpRepr reply{ArpOp::Reply, mac_, arp->target_ip, arp->sender_mac, arp->sender_ip};
  std::uint8_t out[60] = {};
  EthernetRepr eth{arp->sender_mac, mac_, EtherType::Arp, std::nullopt};
  eth.emit(out);
  reply.emit({out + EthernetFrame::kHeaderLen, ArpPacket::kLen});
  nat_counters_.arp_replies++;
  from_peer(out);
}

void NatGateway::send_arp_request(Ipv4Addr target) {
  ArpRepr req{ArpOp::Request, mac_, config_.gateway, MacAddr{}, target};
  std::uint8_t out[60] = {};
  EthernetRepr eth{MacAddr::broadcast(), mac_, EtherType::Arp, std::nullopt};
  eth.emit(out);
  req.emit({out + EthernetFrame::kHeaderLen, ArpPacket::kLen});
  nat_counters_.arp_requests_sent++;
  from_peer(out);
}

void NatGateway::on_ipv4(const MacAddr& src_mac, Bytes payload) {
  auto ip = Ipv4Packet::parse(payload);
  if (!ip) {
    nat_counters_.drop_malformed++;
    return;
  }
  if (!ip->verify_checksum()) {
    nat_counters_.drop_bad_checksum++;
    return;
  }
  if (ip->is_fragment()) {
    nat_counters_.drop_fragment++;
    return;
  }
  learn_guest(ip->src(), src_mac);
  const Ipv4Addr dst = ip->dst();
  const IpProtocol proto = ip->protocol();

  if (proto == IpProtocol::Udp) {
    on_udp(src_mac, *ip);
    return;
  }
  // Where a translated packet goes on the host: the gateway stands for the
  // host's own loopback (QEMU's 10.0.2.2), everything else is itself.
  const bool to_gateway = dst == config_.gateway;
  const bool to_dns = dst == config_.dns;
  if (proto == IpProtocol::Icmp) {
    auto icmp = Icmpv4Packet::parse(ip->payload());
    if (!icmp) {
      nat_counters_.drop_malformed++;
      return;
    }
    if ((to_gateway || to_dns) && icmp->type() == Icmpv4Type::EchoRequest) {
      if (!icmp->verify_checksum()) {
        nat_counters_.drop_bad_checksum++;
        return;
      }
      auto reply = Icmpv4Repr::echo_reply(icmp->echo_ident(), icmp->echo_seq(), icmp->payload());
      std::size_t len = reply.emit(l4_buffer());
      if (len && send_l4_in_place(dst, ip->src(), IpProtocol::Icmp, len)) nat_counters_.icmp_gateway_replies++;
      return;
    }
    if (config_.restrict || to_dns || config_.net.contains(dst)) {
      nat_counters_.drop_restricted++;
      return;
    }
    icmp_->on_packet(*ip, dst);
    return;
  }
  if (proto == IpProtocol::Tcp) {
    if (ip->payload().size() < 4) {
      nat_counters_.drop_malformed++;
      return;
    }
    const std::uint16_t dport = load_be16(ip->payload(), 2);
    if (to_dns && dport == kDnsPort) {
      if (auto upstream = dns_->tcp_upstream()) tcp_->on_segment(*ip, *upstream);
      return;
    }
    if (config_.restrict || to_dns || (config_.net.contains(dst) && !to_gateway)) {
      // Segments of port-forwarded connections still pass: the translator
      // knows them; new outgoing connections are refused there.
      tcp_->on_segment(*ip, SockAddr{});
      return;
    }
    if (to_gateway && !config_.host_loopback) {
      nat_counters_.drop_host_loopback++;
      tcp_->on_segment(*ip, SockAddr{});
      return;
    }
    tcp_->on_segment(*ip, SockAddr::from_ipv4(to_gateway ? Ipv4Addr{{127, 0, 0, 1}} : dst, dport));
    return;
  }
  nat_counters_.drop_unsupported++;
}

void NatGateway::on_udp(const MacAddr& src_mac, const Ipv4Packet& ip) {
  auto udp = UdpPacket::parse(ip.payload());
  if (!udp) {
    nat_counters_.drop_malformed++;
    return;
  }
  if (!udp->verify_checksum(IpAddr(ip.src()), IpAddr(ip.dst()))) {
    nat_counters_.drop_bad_checksum++;
    return;
  }
  const Ipv4Addr dst = ip.dst();
  const std::uint16_t dport = udp->dst_port();
  if (dport == kDhcpServerPort && (dst.is_broadcast() || dst == config_.gateway)) {
    if (config_.dhcp) dhcp_->on_message(src_mac, udp->payload());
    return;
  }
  if (dst == config_.dns && dport == kDnsPort) {
    dns_->on_query(ip.src(), udp->src_port(), udp->payload());
    return;
  }
  if (dst == config_.gateway && tftp_->on_datagram(ip.src(), udp->src_port(), dport, udp->payload())) return;
  if (dst.is_broadcast() || dst.is_multicast() || dst == config_.net.broadcast()) return;
  if (config_.restrict || dst == config_.dns || (config_.net.contains(dst) && dst != config_.gateway)) {
    nat_counters_.drop_restricted++;
    return;
  }
  if (dst == config_.gateway && !config_.host_loopback) {
    nat_counters_.drop_host_loopback++;
    return;
  }
  const Ipv4Addr target = dst == config_.gateway ? Ipv4Addr{{127, 0, 0, 1}} : dst;
  udp_->on_datagram(ip.src(), udp->src_port(), dst, dport, SockAddr::from_ipv4(target, dport), udp->payload());
}

nlohmann::json NatGateway::status() const {
  const auto& c = nat_counters_;
  nlohmann::json counters = {
      {"arp_replies", c.arp_replies},       {"icmp_gateway_replies", c.icmp_gateway_replies},
      {"icmp_echo_out", c.icmp_echo_out},   {"icmp_echo_in", c.icmp_echo_in},
      {"icmp_unavailable", c.icmp_unavailable}, {"udp_flows", c.udp_flows},
      {"udp_out", c.udp_out},               {"udp_in", c.udp_in},
      {"tcp_flows", c.tcp_flows},           {"tcp_refused", c.tcp_refused},
      {"tcp_rst_sent", c.tcp_rst_sent},     {"dhcp_acks", c.dhcp_acks},
      {"dhcp_naks", c.dhcp_naks},           {"dhcp_exhausted", c.dhcp_exhausted},
      {"dns_queries", c.dns_queries},       {"dns_answers", c.dns_answers},
      {"dns_timeouts", c.dns_timeouts},     {"tftp_transfers", c.tftp_transfers},
      {"tftp_refused", c.tftp_refused},     {"drop_malformed", c.drop_malformed},
      {"drop_bad_checksum", c.drop_bad_checksum}, {"drop_fragment", c.drop_fragment},
      {"drop_unknown_guest", c.drop_unknown_guest}, {"drop_restricted", c.drop_restricted},
      {"drop_host_loopback", c.drop_host_loopback}, {"drop_flow_limit", c.drop_flow_limit},
      {"drop_unsupported", c.drop_unsupported}};
  nlohmann::json arp = nlohmann::json::array();
  for (const auto& [ip, mac] : arp_cache_) arp.push_back({{"ip", ip.to_string()}, {"mac", mac.to_string()}});
  return {{"net", config_.net.to_string()},
          {"gateway", config_.gateway.to_string()},
          {"dns", config_.dns.to_string()},
          {"dhcp", config_.dhcp},
          {"restrict", config_.restrict},
          {"host_loopback", config_.host_loopback},
          {"mtu", config_.mtu},
          {"counters", counters},
          {"arp", arp},
          {"leases", dhcp_->status()},
          {"dns_forwarder", dns_->status()},
          {"udp", udp_->status()},
          {"tcp", tcp_->status()},
          {"forwards", portfwd_->list()}};
}

}  // namespace vnet::nat
