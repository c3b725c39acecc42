#include "nat/gateway.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "fabric/network.hpp"
#include "nat/dhcp.hpp"
#include "nat/dhcp6.hpp"
#include "nat/dns.hpp"
#include "nat/icmp.hpp"
#include "nat/ndp.hpp"
#include "nat/portfwd.hpp"
#include "nat/tcp.hpp"
#include "nat/tftp.hpp"
#include "nat/udp.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/checksum.hpp"
#include "wire/tcp.hpp"
#include "wire/icmpv6.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::size_t kEthIpHeaders = EthernetFrame::kHeaderLen + Ipv4Packet::kMinHeaderLen;
// The largest IPv4 datagram, as one TCP super-segment.
constexpr std::size_t kOffloadFrame = EthernetFrame::kHeaderLen + 65535;
constexpr std::size_t kTcpChecksumOffset = 16;
// The l4 segment always starts after room for the larger IP header, so a
// segment built in place can get either family's header in front of it.
constexpr std::size_t kL4Offset = EthernetFrame::kHeaderLen + Ipv6Packet::kHeaderLen;
constexpr std::size_t kIpv4Slack = Ipv6Packet::kHeaderLen - Ipv4Packet::kMinHeaderLen;
constexpr std::uint16_t kDhcpServerPort = 67;
constexpr std::uint16_t kDhcp6ServerPort = 547;

bool is_dhcp_request(const Ipv4Packet& ip, Ipv4Addr gateway) {
  const Bytes l4 = ip.payload();
  return ip.protocol() == IpProtocol::Udp && l4.size() >= 4 && load_be16(l4, 2) == kDhcpServerPort &&
         (ip.dst().is_broadcast() || ip.dst() == gateway);
}

// ICMPv6 messages of neighbour discovery (RFC 4861): router and neighbour
// solicitation/advertisement, redirect.
bool is_ndp(std::uint8_t icmp_type) { return icmp_type >= 133 && icmp_type <= 137; }

// Multicast listener discovery (MLD v1 query/report/done, MLDv2 report):
// hosts send them on every link; a NAT gateway has no use for them.
bool is_mld(std::uint8_t icmp_type) { return (icmp_type >= 130 && icmp_type <= 132) || icmp_type == 143; }

bool is_ipv6_multicast_mac(const MacAddr& m) { return m.octets[0] == 0x33 && m.octets[1] == 0x33; }

// How often bindings silent past the aging time are swept.
Nanos neigh_sweep_interval(Nanos aging) { return std::clamp<Nanos>(aging / 4, kSeconds, 60 * kSeconds); }

// 52:55 followed by the gateway's IPv4 address, the convention of QEMU's
// user-mode stack, so guests moving from -netdev user see a familiar MAC.
MacAddr gateway_mac(Ipv4Addr gw) { return MacAddr{{0x52, 0x55, gw.octets[0], gw.octets[1], gw.octets[2], gw.octets[3]}}; }

}  // namespace

NatGateway::NatGateway(EventLoop& loop, Network& net, PortId id, NatConfig config)
    : Port(loop, net, id),
      config_(std::move(config)),
      mac_(gateway_mac(config_.gateway)),
      neigh_(config_, nat_counters_, net.options().mac_aging),
      neigh_sweep_(loop, [this] { sweep_neighbours(); }),
      // The MTU bounds the IP datagram: the l4 buffer is what is left after
      // an IPv4 header, so nothing built in it can exceed the MTU as IPv4
      // (IPv6 sends check their 20 bytes more).
      frame_capacity_(kIpv4Slack + EthernetFrame::kHeaderLen + std::max<std::size_t>(config_.mtu, 576)),
      dhcp_(std::make_unique<DhcpServer>(*this, &neigh_)),
      dns_(std::make_unique<DnsForwarder>(*this)),
      icmp_(std::make_unique<IcmpTranslator>(*this)),
      udp_(std::make_unique<UdpTranslator>(*this)),
      tcp_(std::make_unique<TcpTranslator>(*this)),
      tftp_(std::make_unique<TftpServer>(*this)),
      portfwd_(std::make_unique<PortForwarder>(*this, *tcp_, *udp_)) {
  frame_.reset(new std::uint8_t[std::max(frame_capacity_, kIpv4Slack + kOffloadFrame)]);
  // The gateway speaks untagged frames: it serves VLAN 0, the untagged domain.
  set_vlan_config(VlanConfig::access(0));
  for (const auto& [mac, addr] : config_.reservations) dhcp_->reserve(mac, addr);
  if (config_.ipv6) start_ipv6_control();
  neigh_sweep_.arm_in(neigh_sweep_interval(neigh_.aging()));
}

void NatGateway::start_ipv6_control() {
  Ipv6Settings s;
  s.prefix = config_.net6.network();
  s.prefix_len = config_.net6.prefix_len;
  s.gateway = config_.gateway6;
  s.dns = config_.dns6;
  s.mac = mac_;
  s.mtu = config_.mtu;
  s.domain = config_.domain;
  // O: DNS by DHCPv6 too; M: addresses by DHCPv6 (see docs/nat.md).
  s.other = config_.dhcp6;
  s.managed = config_.dhcp6 && config_.dhcp6_managed;
  s.router = config_.offer_router;
  s.announce_dns = config_.dns_forwarder;
  s.advertise = config_.ra;
  neigh_.set_gateway_link_local(link_local_from_mac(mac_));
  control6_ = std::make_unique<Ipv6ControlOut>(mac_, [this](Bytes frame) { from_peer(frame); });
  ndp_ = std::make_unique<NdpServer>(loop_, *control6_, neigh_, nat_counters_, s);
  if (config_.dhcp6) dhcp6_ = std::make_unique<Dhcp6Server>(*control6_, &neigh_, nat_counters_, config_, s);
}

void NatGateway::sweep_neighbours() {
  neigh_.expire(monotonic_now());
  neigh_sweep_.arm_in(neigh_sweep_interval(neigh_.aging()));
}

NatGateway::~NatGateway() = default;

std::string NatGateway::peer() const {
  std::string text =
      config_.net.to_string() + " gw " + config_.gateway.to_string() + " dns " + config_.dns.to_string();
  if (config_.ipv6) {
    text += ", " + config_.net6.to_string() + " gw " + config_.gateway6.to_string() + " dns " +
            config_.dns6.to_string();
  }
  return text;
}

MutBytes NatGateway::l4_buffer() { return {frame_.get() + kL4Offset, frame_capacity_ - kL4Offset}; }

const MacAddr* NatGateway::guest_mac(IpAddr guest) const { return neigh_.mac_of(guest); }

bool NatGateway::ipv4_dst_mac(Ipv4Addr dst, MacAddr& dst_mac) {
  if (dst.is_broadcast() || dst == config_.net.broadcast()) {
    dst_mac = MacAddr::broadcast();
  } else if (const MacAddr* m = guest_mac(IpAddr(dst))) {
    dst_mac = *m;
  } else {
    nat_counters_.drop_unknown_guest++;
    send_arp_request(dst);
    return false;
  }
  return true;
}

bool NatGateway::send_l4_in_place(IpAddr src_ip, IpAddr dst_ip, IpProtocol proto, std::size_t len) {
  if (src_ip.is_v4() != dst_ip.is_v4()) return false;
  if (dst_ip.is_v6()) return send_ipv6(src_ip.v6(), dst_ip.v6(), proto, len);
  const Ipv4Addr src = src_ip.v4(), dst = dst_ip.v4();
  MacAddr dst_mac;
  if (!ipv4_dst_mac(dst, dst_mac)) return false;
  Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = proto;
  ip.payload_len = static_cast<std::uint16_t>(len);
  std::uint8_t* l3 = frame_.get() + kL4Offset - Ipv4Packet::kMinHeaderLen;
  ip.emit({l3, Ipv4Packet::kMinHeaderLen});
  emit_frame(dst_mac, EtherType::Ipv4, l3, Ipv4Packet::kMinHeaderLen + len);
  return true;
}

// The MAC an IPv6 packet to dst goes to: a multicast group's, or the
// guest's from the neighbour table; an unknown guest is solicited.
bool NatGateway::ipv6_dst_mac(const Ipv6Addr& dst, MacAddr& mac) {
  if (dst.is_multicast()) {
    mac = ipv6_multicast_mac(dst);
    return true;
  }
  if (const MacAddr* m = guest_mac(IpAddr(dst))) {
    mac = *m;
    return true;
  }
  nat_counters_.drop_unknown_guest++;
  solicit_neighbour(dst);
  return false;
}

bool NatGateway::send_ipv6(const Ipv6Addr& src, const Ipv6Addr& dst, IpProtocol proto, std::size_t len) {
  if (!config_.ipv6) return false;
  if (Ipv6Packet::kHeaderLen + len > std::max<std::size_t>(config_.mtu, 1280)) {
    nat_counters_.drop_too_big++;
    return false;
  }
  MacAddr dst_mac;
  if (!ipv6_dst_mac(dst, dst_mac)) return false;
  Ipv6Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.next_header = proto;
  ip.hop_limit = 64;
  ip.payload_len = static_cast<std::uint16_t>(len);
  std::uint8_t* l3 = frame_.get() + kL4Offset - Ipv6Packet::kHeaderLen;
  ip.emit({l3, Ipv6Packet::kHeaderLen});
  emit_frame(dst_mac, EtherType::Ipv6, l3, Ipv6Packet::kHeaderLen + len);
  return true;
}

bool NatGateway::send_udp(IpAddr src, std::uint16_t sport, IpAddr dst, std::uint16_t dport, Bytes payload) {
  MutBytes l4 = l4_buffer();
  if (payload.size() + UdpPacket::kHeaderLen > l4.size()) return false;
  // Payloads may already sit in l4_buffer (built in place): move, not copy.
  std::memmove(l4.data() + UdpPacket::kHeaderLen, payload.data(), payload.size());
  UdpRepr udp{sport, dport, static_cast<std::uint16_t>(payload.size())};
  udp.emit(l4.first(UdpPacket::kHeaderLen + payload.size()), src, dst);
  return send_l4_in_place(src, dst, IpProtocol::Udp, UdpPacket::kHeaderLen + payload.size());
}

void NatGateway::emit_frame(const MacAddr& dst, EtherType type, std::uint8_t* l3, std::size_t l3_len,
                            const Offload* offload) {
  std::uint8_t* start = l3 - EthernetFrame::kHeaderLen;
  EthernetRepr eth{dst, mac_, type, std::nullopt};
  eth.emit({start, EthernetFrame::kHeaderLen});
  std::size_t len = EthernetFrame::kHeaderLen + l3_len;
  // Old stacks (PXE ROMs, DOS) drop frames under the Ethernet minimum of 60
  // bytes. (An offloaded segment is never that short: it carries data.) The
  // buffer always has room: it holds at least 576 bytes past l3.
  if (len < 60 && !offload) {
    std::memset(start + len, 0, 60 - len);
    len = 60;
  }
  from_peer({start, len}, offload);
}

std::size_t NatGateway::tcp_offload_room(const IpAddr& guest) const {
  // The same room for both families: the IPv4 total length and the IPv6
  // payload length both stay within 16 bits (the IPv6 header is not counted).
  if (!guest.is_v4() && !config_.ipv6) return 0;
  return kOffloadFrame - kEthIpHeaders - TcpPacket::kMinHeaderLen;
}

std::size_t NatGateway::guest_queue_room(const IpAddr& guest) const {
  const MacAddr* mac = guest_mac(guest);
  const PortId id = mac ? net_.port_of(*mac) : 0;
  const Port* port = id ? net_.find_port(id) : nullptr;
  return port ? port->egress_room() : SIZE_MAX;
}

MutBytes NatGateway::l4_offload_buffer() {
  return {frame_.get() + kL4Offset, std::max(frame_capacity_, kIpv4Slack + kOffloadFrame) - kL4Offset};
}

// The segment goes out with its checksum left partial (the pseudo-header
// sum in the field, as the kernel's CHECKSUM_PARTIAL), and, when it carries
// more than one MSS, as a TSO segment: a TAP that takes offloads passes it
// whole to the guest's kernel; for every other port (or a capture) the
// switch cuts it and completes the checksums (Port::deliver).
bool NatGateway::send_tcp_offloaded(const IpAddr& src_ip, const IpAddr& dst_ip, std::size_t len,
                                    std::uint16_t mss) {
  if (src_ip.is_v4() != dst_ip.is_v4() || mss == 0) return false;
  const bool v4 = dst_ip.is_v4();
  const std::size_t ip_header = v4 ? Ipv4Packet::kMinHeaderLen : Ipv6Packet::kHeaderLen;
  const MutBytes l4 = l4_offload_buffer();
  if (len < TcpPacket::kMinHeaderLen || len > l4.size() || len + (v4 ? ip_header : 0) > 65535) return false;
  MacAddr dst_mac;
  if (v4 ? !ipv4_dst_mac(dst_ip.v4(), dst_mac) : !ipv6_dst_mac(dst_ip.v6(), dst_mac)) return false;
  const std::size_t tcp_header = static_cast<std::size_t>(l4[12] >> 4) * 4;
  if (tcp_header < TcpPacket::kMinHeaderLen || tcp_header > len) return false;
  const auto proto = static_cast<std::uint8_t>(IpProtocol::Tcp);
  const auto l4_len = static_cast<std::uint16_t>(len);
  const std::uint32_t pseudo = v4 ? pseudo_header_v4(src_ip.v4(), dst_ip.v4(), proto, l4_len)
                                  : pseudo_header_v6(src_ip.v6(), dst_ip.v6(), proto, l4_len);
  store_be16(l4, kTcpChecksumOffset, checksum_fold(pseudo));
  std::uint8_t* l3 = frame_.get() + kL4Offset - ip_header;
  if (v4) {
    Ipv4Repr ip;
    ip.src = src_ip.v4();
    ip.dst = dst_ip.v4();
    ip.protocol = IpProtocol::Tcp;
    ip.payload_len = l4_len;
    ip.emit({l3, ip_header});
  } else {
    Ipv6Repr ip;
    ip.src = src_ip.v6();
    ip.dst = dst_ip.v6();
    ip.next_header = IpProtocol::Tcp;
    ip.payload_len = l4_len;
    ip.emit({l3, ip_header});
  }
  const std::size_t l4_start = EthernetFrame::kHeaderLen + ip_header;
  Offload off;
  off.flags = Offload::kNeedsCsum;
  off.csum_start = static_cast<std::uint16_t>(l4_start);
  off.csum_offset = static_cast<std::uint16_t>(kTcpChecksumOffset);
  off.hdr_len = static_cast<std::uint16_t>(l4_start + tcp_header);
  if (len - tcp_header > mss) {
    off.gso_type = v4 ? Offload::kGsoTcpV4 : Offload::kGsoTcpV6;
    off.gso_size = mss;
  }
  emit_frame(dst_mac, v4 ? EtherType::Ipv4 : EtherType::Ipv6, l3, ip_header + len, &off);
  return true;
}

// True when an offloaded frame from a guest can go to the translators
// whole: a TCP segment (TSO of its own family, or none) whose open checksum,
// if any, is exactly the TCP checksum.
bool NatGateway::takes_whole(Bytes frame, const Offload& offload) const {
  const std::uint8_t gso = offload.gso_type & ~Offload::kGsoEcn;
  auto eth = EthernetFrame::parse(frame);
  if (!eth) return false;
  std::size_t ip_header = 0;
  if (eth->ethertype() == EtherType::Ipv4 && (gso == Offload::kGsoNone || gso == Offload::kGsoTcpV4)) {
    auto ip = Ipv4Packet::parse(eth->payload());
    if (!ip || ip->protocol() != IpProtocol::Tcp) return false;
    ip_header = ip->header_len();
  } else if (eth->ethertype() == EtherType::Ipv6 && config_.ipv6 &&
             (gso == Offload::kGsoNone || gso == Offload::kGsoTcpV6)) {
    auto ip = Ipv6Packet::parse(eth->payload());
    if (!ip || ip->next_header() != IpProtocol::Tcp) return false;
    ip_header = Ipv6Packet::kHeaderLen;
  } else {
    return false;
  }
  const std::size_t l4_start = eth->header_len() + ip_header;
  return !offload.needs_csum() || (offload.csum_start == l4_start && offload.csum_offset == kTcpChecksumOffset);
}

void NatGateway::send_offloaded(Bytes frame, const Offload& offload) {
  // Whole: TCP over IPv4, or over IPv6 without extension headers, whose
  // checksum (if left open) is the TCP checksum. The segment size a TSO
  // header asks for does not matter here: the payload goes into a host
  // socket, whose kernel cuts it as its own path needs.
  if (takes_whole(frame, offload)) {
    const bool saved = checksum_offloaded_;
    checksum_offloaded_ = offload.needs_csum() || (offload.gso_type & ~Offload::kGsoEcn) != Offload::kGsoNone;
    send_to_peer(frame);
    checksum_offloaded_ = saved;
    return;
  }
  Network::ScratchLease scratch(net_);
  if (!resolve_offload(frame, offload, scratch.bytes(), [this](Bytes f) { send_to_peer(f); }))
    nat_counters_.drop_malformed++;
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
  // Unicast for someone else was flooded; IPv6 multicast (33:33:...) carries
  // neighbour discovery and DHCPv6.
  if (dst != mac_ && !dst.is_broadcast() && !(config_.ipv6 && is_ipv6_multicast_mac(dst))) return;
  // The port the frame entered on. Outside the switch's ingress (a frame
  // held back by an egress impairment of this port) the MAC table says.
  PortId port = net_.ingress_port();
  if (port == 0) port = net_.port_of(eth->src());
  switch (eth->ethertype()) {
    case EtherType::Arp: on_arp(port, eth->src(), eth->payload()); break;
    case EtherType::Ipv4: on_ipv4(port, eth->src(), eth->payload()); break;
    case EtherType::Ipv6:
      if (config_.ipv6) on_ipv6(port, eth->src(), eth->payload());
      break;
    default: break;  // others: not translated
  }
}

void NatGateway::on_arp(PortId port, const MacAddr& src_mac, Bytes payload) {
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
  // A guest speaks ARP for itself: a sender MAC other than the frame's, or
  // a sender address that is not the guest's, would rebind someone else.
  if (arp->sender_mac != src_mac) {
    nat_counters_.drop_spoofed++;
    return;
  }
  // Probes (RFC 5227) come from 0.0.0.0: answered, nothing bound.
  if (!arp->sender_ip.is_unspecified() &&
      neigh_.check_source(port, src_mac, IpAddr(arp->sender_ip), monotonic_now()) != NeighTable::Verdict::Ok)
    return;
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

void NatGateway::count_refusal(FwdRefusal why) {
  switch (why) {
    case FwdRefusal::Martian: nat_counters_.drop_martian++; break;
    case FwdRefusal::HostLoopback: nat_counters_.drop_host_loopback++; break;
    case FwdRefusal::Restricted: nat_counters_.drop_restricted++; break;
    case FwdRefusal::None: break;
  }
}

void NatGateway::on_ipv4(PortId port, const MacAddr& src_mac, Bytes payload) {
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
  if (is_dhcp_request(*ip, config_.gateway)) {
    // DHCP checks its clients itself (chaddr against the source MAC, leases
    // per port); a client may not have an address yet (0.0.0.0).
    on_udp(port, src_mac, ip->src(), ip->dst(), ip->payload());
    return;
  }
  if (neigh_.check_source(port, src_mac, IpAddr(ip->src()), monotonic_now()) != NeighTable::Verdict::Ok) return;
  switch (ip->protocol()) {
    case IpProtocol::Udp: on_udp(port, src_mac, ip->src(), ip->dst(), ip->payload()); return;
    case IpProtocol::Icmp: on_icmp(*ip); return;
    case IpProtocol::Tcp: on_tcp(ip->src(), ip->dst(), ip->payload()); return;
    default: nat_counters_.drop_unsupported++; return;
  }
}

void NatGateway::on_ipv6(PortId port, const MacAddr& src_mac, Bytes payload) {
  auto ip = Ipv6Packet::parse(payload);
  if (!ip) {
    nat_counters_.drop_malformed++;
    return;
  }
  auto l3 = walk_extension_headers(*ip);
  if (!l3) {
    if (l3.error() == ParseError::Truncated) nat_counters_.drop_malformed++;
    else nat_counters_.drop_ipv6_extension++;
    return;
  }
  if (l3->is_fragment()) {
    nat_counters_.drop_fragment++;
    return;
  }
  nat_counters_.ipv6_in++;
  const Ipv6Addr src = ip->src(), dst = ip->dst();
  const Bytes l4 = l3->l4;
  // The control plane first: it speaks from link-local and unspecified
  // sources, which no translator accepts.
  if (l3->protocol == IpProtocol::Icmpv6 && !l4.empty()) {
    if (is_ndp(l4[0])) return on_ndp(port, src_mac, *ip, l4);
    if (is_mld(l4[0])) return;
  }
  if (l3->protocol == IpProtocol::Udp && l4.size() >= 4 && load_be16(l4, 2) == kDhcp6ServerPort &&
      (dst.is_multicast() || is_own_address(dst)))
    return on_dhcp6(port, src_mac, *ip, l4);
  if (dst.is_multicast() || src.is_link_local()) return;  // link chatter (mDNS, LLMNR...), not for the NAT
  // An IPv4-mapped address would pass as the IPv4 address it maps.
  if (src.is_v4_mapped() || src.is_unspecified()) {
    nat_counters_.drop_spoofed++;
    return;
  }
  if (dst.is_v4_mapped()) {
    nat_counters_.drop_martian++;
    return;
  }
  if (neigh_.check_source(port, src_mac, IpAddr(src), monotonic_now()) != NeighTable::Verdict::Ok) return;
  switch (l3->protocol) {
    case IpProtocol::Udp: on_udp(port, src_mac, IpAddr(src), IpAddr(dst), l4); return;
    case IpProtocol::Tcp: on_tcp(IpAddr(src), IpAddr(dst), l4); return;
    case IpProtocol::Icmpv6: on_icmp6(*ip, l4); return;
    default: nat_counters_.drop_unsupported++; return;
  }
}

// ---- IPv6 control plane hook points ---------------------------------------
// Neighbour discovery (nat/ndp) and DHCPv6 (nat/dhcp6) check their senders
// themselves: both bind guests through the neighbour table.

void NatGateway::on_ndp(PortId port, const MacAddr& src_mac, const Ipv6Packet& ip, Bytes icmp) {
  if (ndp_) ndp_->on_message(port, src_mac, ip.src(), ip.dst(), ip.hop_limit(), icmp);
}

void NatGateway::on_dhcp6(PortId port, const MacAddr& src_mac, const Ipv6Packet& ip, Bytes udp) {
  if (dhcp6_) dhcp6_->on_message(port, src_mac, ip.src(), ip.dst(), udp);
}

void NatGateway::solicit_neighbour(const Ipv6Addr& target) {
  if (ndp_) ndp_->solicit(target);
}

// ---------------------------------------------------------------------------

void NatGateway::on_icmp6(const Ipv6Packet& ip, Bytes l4) {
  auto icmp = Icmpv6Packet::parse(l4);
  if (!icmp) {
    nat_counters_.drop_malformed++;
    return;
  }
  const Ipv6Addr dst = ip.dst();
  if (is_own_address(dst) && icmp->type() == Icmpv6Type::EchoRequest) {
    if (!icmp->verify_checksum(ip.src(), dst)) {
      nat_counters_.drop_bad_checksum++;
      return;
    }
    auto reply = Icmpv6Repr::echo_reply(icmp->echo_ident(), icmp->echo_seq(), icmp->payload());
    std::size_t len = reply.emit(l4_buffer(), dst, ip.src());
    if (len && send_ipv6(dst, ip.src(), IpProtocol::Icmpv6, len)) nat_counters_.icmp_gateway_replies++;
    return;
  }
  if (icmp->type() != Icmpv6Type::EchoRequest) {
    nat_counters_.drop_unsupported++;
    return;
  }
  const FwdDecision d = forward(config_, IpProtocol::Icmpv6, IpAddr(dst), 0);
  if (d.kind != FwdKind::Outside) {
    count_refusal(d.refused() ? d.refusal : FwdRefusal::Restricted);
    return;
  }
  icmp_->on_packet6(ip, l4, d.target.v6());
}

void NatGateway::on_icmp(const Ipv4Packet& ip) {
  auto icmp = Icmpv4Packet::parse(ip.payload());
  if (!icmp) {
    nat_counters_.drop_malformed++;
    return;
  }
  const Ipv4Addr dst = ip.dst();
  if (is_own_address(dst) && icmp->type() == Icmpv4Type::EchoRequest) {
    if (!icmp->verify_checksum()) {
      nat_counters_.drop_bad_checksum++;
      return;
    }
    auto reply = Icmpv4Repr::echo_reply(icmp->echo_ident(), icmp->echo_seq(), icmp->payload());
    std::size_t len = reply.emit(l4_buffer());
    if (len && send_l4_in_place(dst, ip.src(), IpProtocol::Icmp, len)) nat_counters_.icmp_gateway_replies++;
    return;
  }
  const FwdDecision d = forward(config_, IpProtocol::Icmp, IpAddr(dst), 0);
  if (d.kind != FwdKind::Outside) {
    count_refusal(d.refused() ? d.refusal : FwdRefusal::Restricted);
    return;
  }
  icmp_->on_packet(ip, d.target.v4());
}

void NatGateway::on_tcp(const IpAddr& src, const IpAddr& dst, Bytes l4) {
  if (l4.size() < 14) {
    nat_counters_.drop_malformed++;
    return;
  }
  const std::uint16_t dport = load_be16(l4, 2);
  const FwdDecision d = forward(config_, IpProtocol::Tcp, dst, dport);
  switch (d.kind) {
    case FwdKind::DnsForwarder:
      if (auto upstream = dns_->tcp_upstream()) tcp_->on_segment(src, dst, l4, *upstream);
      return;
    case FwdKind::Refused: {
      // Segments of existing flows (port forwards) still pass: the
      // translator knows them and refuses new connections itself. Only a
      // connection attempt (SYN without ACK) counts as refused.
      constexpr std::uint8_t kSyn = 0x02, kAck = 0x10;
      if ((l4[13] & (kSyn | kAck)) == kSyn) count_refusal(d.refusal);
      tcp_->on_segment(src, dst, l4, SockAddr{});
      return;
    }
    case FwdKind::HostLoopback:
    case FwdKind::Outside: tcp_->on_segment(src, dst, l4, host_target(d, dport)); return;
  }
}

void NatGateway::on_udp(PortId port, const MacAddr& src_mac, const IpAddr& src, const IpAddr& dst, Bytes l4) {
  auto udp = UdpPacket::parse(l4);
  if (!udp) {
    nat_counters_.drop_malformed++;
    return;
  }
  if (!udp->verify_checksum(src, dst)) {
    nat_counters_.drop_bad_checksum++;
    return;
  }
  const std::uint16_t sport = udp->src_port(), dport = udp->dst_port();
  const bool v4 = dst.is_v4();
  if (v4 && dport == kDhcpServerPort && (dst.v4().is_broadcast() || dst.v4() == config_.gateway)) {
    if (config_.dhcp) dhcp_->on_message(src_mac, udp->payload(), port);
    return;
  }
  // Flows first: a port-forwarded client's replies pass whatever the
  // policy says about its address (it may be the gateway, or outside).
  if (udp_->has_flow(src, sport, dst, dport)) {
    udp_->on_datagram(src, sport, dst, dport, SockAddr{}, udp->payload());
    return;
  }
  if (v4 && dst.v4() == config_.gateway && tftp_->on_datagram(src.v4(), sport, dport, udp->payload(), port)) return;
  if (v4 && (dst.v4().is_broadcast() || dst.v4() == config_.net.broadcast())) return;  // LAN chatter (NetBIOS, SSDP...)
  const FwdDecision d = forward(config_, IpProtocol::Udp, dst, dport);
  switch (d.kind) {
    case FwdKind::DnsForwarder:
      dns_->on_query(src, sport, udp->payload());
      return;
    case FwdKind::Refused:
      // Multicast chatter is not worth a counter; every other refusal is.
      if (!(v4 ? dst.v4().is_multicast() : dst.v6().is_multicast())) count_refusal(d.refusal);
      return;
    case FwdKind::HostLoopback:
    case FwdKind::Outside:
      udp_->on_datagram(src, sport, dst, dport, host_target(d, dport), udp->payload());
      return;
  }
}

nlohmann::json NatGateway::status() const {
  const auto& c = nat_counters_;
  nlohmann::json counters = {
      {"arp_replies", c.arp_replies},       {"icmp_gateway_replies", c.icmp_gateway_replies},
      {"icmp_echo_out", c.icmp_echo_out},   {"icmp_echo_in", c.icmp_echo_in},
      {"icmp_unavailable", c.icmp_unavailable}, {"udp_flows", c.udp_flows},
      {"udp_out", c.udp_out},               {"udp_in", c.udp_in},
      {"udp_out_runs", c.udp_out_runs},
      {"tcp_flows", c.tcp_flows},           {"tcp_refused", c.tcp_refused},
      {"tcp_rst_sent", c.tcp_rst_sent},     {"dhcp_acks", c.dhcp_acks},
      {"dhcp_naks", c.dhcp_naks},           {"dhcp_exhausted", c.dhcp_exhausted},
      {"dns_queries", c.dns_queries},       {"dns_answers", c.dns_answers},
      {"dns_timeouts", c.dns_timeouts},     {"tftp_transfers", c.tftp_transfers},
      {"tftp_refused", c.tftp_refused},     {"drop_malformed", c.drop_malformed},
      {"drop_bad_checksum", c.drop_bad_checksum}, {"drop_fragment", c.drop_fragment},
      {"drop_unknown_guest", c.drop_unknown_guest}, {"drop_restricted", c.drop_restricted},
      {"drop_host_loopback", c.drop_host_loopback}, {"drop_flow_limit", c.drop_flow_limit},
      {"drop_unsupported", c.drop_unsupported}, {"drop_spoofed", c.drop_spoofed},
      {"drop_martian", c.drop_martian},     {"drop_neigh_limit", c.drop_neigh_limit},
      {"neigh_mac_conflict", c.neigh_mac_conflict}, {"dhcp_chaddr_mismatch", c.dhcp_chaddr_mismatch},
      {"dhcp_port_limit", c.dhcp_port_limit}, {"tftp_guest_limit", c.tftp_guest_limit},
      {"drop_guest_flows", c.drop_guest_flows}, {"drop_net_flows", c.drop_net_flows},
      {"drop_guest_connects", c.drop_guest_connects}, {"drop_net_connects", c.drop_net_connects},
      {"drop_guest_dns", c.drop_guest_dns},
      {"ipv6_in", c.ipv6_in},               {"drop_ipv6_extension", c.drop_ipv6_extension},
      {"drop_too_big", c.drop_too_big},
      {"ndp_ra_sent", c.ndp_ra_sent},       {"ndp_na_sent", c.ndp_na_sent},
      {"ndp_ns_sent", c.ndp_ns_sent},       {"drop_ndp_invalid", c.drop_ndp_invalid},
      {"ndp_guest_router_msgs", c.ndp_guest_router_msgs}, {"dhcp6_replies", c.dhcp6_replies},
      {"dhcp6_no_addrs", c.dhcp6_no_addrs}, {"dhcp6_port_limit", c.dhcp6_port_limit},
      {"tcp_fallback_peeked", c.tcp_fallback_peeked}, {"tcp_fallback_sent", c.tcp_fallback_sent},
      {"tcp_host_window_widened", c.tcp_host_window_widened},
      {"tcp_ooo_kept", c.tcp_ooo_kept},     {"tcp_ooo_refused", c.tcp_ooo_refused}};
  return {{"net", config_.net.to_string()},
          {"gateway", config_.gateway.to_string()},
          {"router", config_.router.value_or(config_.gateway).to_string()},
          {"dns", config_.dns.to_string()},
          {"dhcp", config_.dhcp},
          {"ipv6", config_.ipv6},
          {"net6", config_.net6.to_string()},
          {"gateway6", config_.gateway6.to_string()},
          {"dns6", config_.dns6.to_string()},
          {"ra", config_.ipv6 && config_.ra},
          {"dhcp6", config_.ipv6 && config_.dhcp6},
          {"restrict", config_.restrict},
          {"host_loopback", config_.host_loopback},
          {"outside", config_.outside},
          {"dns_forwarding", config_.dns_forwarder},
          {"mtu", config_.mtu},
          {"counters", counters},
          {"arp", neigh_.status()},
          {"neighbours_total", neigh_.size()},
          {"leases", dhcp_->status()},
          {"dhcp6", !config_.dhcp6 ? "off" : config_.dhcp6_managed ? "managed" : "on"},
          {"ndp", ndp_ ? ndp_->status() : nlohmann::json(nullptr)},
          {"leases6", dhcp6_ ? dhcp6_->status() : nlohmann::json::array()},
          {"dns_forwarder", dns_->status()},
          {"udp", udp_->status()},
          {"tcp", tcp_->status()},
          {"flows", flows_.status()},
          {"forwards", portfwd_->list()}};
}

}  // namespace vnet::nat
