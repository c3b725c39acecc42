// The whole NAT input path: a sequence of frames from three guest ports
// into a real Network with a NatGateway (neighbour table, policy, DHCP, DNS,
// ICMP, UDP, TCP dispatch). The gateway runs with --restrict on and its DNS
// upstream on a closed loopback port, so nothing fuzzed ever leaves the host.
//
// Input: records of [port][kind][len][len bytes]. kind 0 sends the bytes as
// a raw frame; other kinds build a well-formed frame around them (ARP,
// UDP, ICMP echo, TCP) with source and destination addresses picked from
// small sets (guests, the gateway, DNS, broadcast, martians, outside) so the
// checks past parsing are reached.
//
// Invariants checked after every frame:
// - no binding stolen: an address bound to a guest (port, MAC) stays bound
//   to it after any frame that is not DHCP (aging cannot pass within a run:
//   the network's aging is the default 300 s);
// - a unicast IPv4 frame the gateway sends to a bound guest address carries
//   that guest's MAC;
// - the neighbour table stays within its caps;
// - no crash, no sanitizer report.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/log.hpp"
#include "fabric/network.hpp"
#include "fuzz_sink.hpp"
#include "nat/gateway.hpp"
#include "nat/neigh.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;

namespace {

constexpr std::size_t kGuests = 3;
const MacAddr kGatewayMac{{0x52, 0x55, 10, 0, 2, 2}};

struct Binding {
  PortId port;
  MacAddr mac;
};

// Source addresses the harness uses; index 0..5 are in the network.
constexpr std::array<Ipv4Addr, 9> kSources = {
    Ipv4Addr{{10, 0, 2, 15}}, Ipv4Addr{{10, 0, 2, 16}}, Ipv4Addr{{10, 0, 2, 17}}, Ipv4Addr{{10, 0, 2, 40}},
    Ipv4Addr{{10, 0, 2, 2}},  Ipv4Addr{{10, 0, 2, 255}}, Ipv4Addr{{0, 0, 0, 0}},   Ipv4Addr{{192, 168, 1, 1}},
    Ipv4Addr{{127, 0, 0, 1}}};
constexpr std::array<Ipv4Addr, 10> kDestinations = {
    Ipv4Addr{{10, 0, 2, 2}},   Ipv4Addr{{10, 0, 2, 3}},      Ipv4Addr{{255, 255, 255, 255}}, Ipv4Addr{{10, 0, 2, 255}},
    Ipv4Addr{{127, 0, 0, 1}},  Ipv4Addr{{127, 1, 2, 3}},     Ipv4Addr{{0, 0, 0, 0}},         Ipv4Addr{{169, 254, 1, 1}},
    Ipv4Addr{{10, 0, 2, 16}},  Ipv4Addr{{198, 51, 100, 10}}};
constexpr std::array<std::uint16_t, 6> kPorts = {67, 53, 69, 7, 80, 12345};

class GuestPort : public Port {
 public:
  using Port::Port;
  std::string kind() const override { return "fuzz"; }
  void inject(Bytes f) { from_peer(f); }
  std::function<std::optional<Binding>(Ipv4Addr)> bound;

 protected:
  void send_to_peer(Bytes f) override {
    counters_.tx_frames++;
    auto eth = EthernetFrame::parse(f);
    check(static_cast<bool>(eth));
    if (eth->src() != kGatewayMac || eth->ethertype() != EtherType::Ipv4 || eth->dst().is_multicast()) return;
    auto ip = Ipv4Packet::parse(eth->payload());
    check(static_cast<bool>(ip));
    if (!bound) return;
    // Downstream traffic for a bound address goes to its holder's MAC.
    if (auto b = bound(ip->dst())) check(eth->dst() == b->mac);
  }
};

MacAddr guest_mac(std::size_t port_index, std::uint8_t variant) {
  // Mostly one MAC per port; sometimes another port's MAC or a fresh one.
  const std::uint8_t owner = variant % 5 == 4 ? static_cast<std::uint8_t>((port_index + 1) % kGuests)
                                              : static_cast<std::uint8_t>(port_index);
  const std::uint8_t extra = variant % 7 == 6 ? variant : 0;
  return MacAddr{{0x52, 0x54, 0, 0, extra, static_cast<std::uint8_t>(owner + 1)}};
}

std::size_t emit_ipv4(std::vector<std::uint8_t>& out, const MacAddr& src_mac, const MacAddr& dst_mac, Ipv4Addr src,
                      Ipv4Addr dst, IpProtocol proto, std::size_t l4_len) {
  EthernetRepr eth{dst_mac, src_mac, EtherType::Ipv4, std::nullopt};
  eth.emit(out);
  Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = proto;
  ip.payload_len = static_cast<std::uint16_t>(l4_len);
  ip.emit(MutBytes(out).subspan(EthernetFrame::kHeaderLen));
  return EthernetFrame::kHeaderLen + Ipv4Packet::kMinHeaderLen + l4_len;
}

// Builds a frame of `kind` from the record's bytes; returns its length.
std::size_t build(std::vector<std::uint8_t>& out, std::size_t port_index, std::uint8_t kind, Bytes in) {
  constexpr std::size_t kL3 = EthernetFrame::kHeaderLen + Ipv4Packet::kMinHeaderLen;
  auto at = [&](std::size_t i) -> std::uint8_t { return i < in.size() ? in[i] : 0; };
  const MacAddr smac = guest_mac(port_index, at(0));
  const Ipv4Addr src = kSources[at(1) % kSources.size()];
  const Ipv4Addr dst = kDestinations[at(2) % kDestinations.size()];
  const MacAddr dmac = at(3) & 1 ? MacAddr::broadcast() : kGatewayMac;
  const Bytes body = in.size() > 4 ? in.subspan(4) : Bytes{};
  switch (kind % 5) {
    case 0: {  // raw
      const std::size_t n = std::min(in.size(), out.size());
      std::copy_n(in.begin(), n, out.begin());
      return n;
    }
    case 1: {  // ARP
      EthernetRepr eth{dmac, smac, EtherType::Arp, std::nullopt};
      eth.emit(out);
      const MacAddr sender = at(4) % 4 == 3 ? guest_mac(port_index + 1, 0) : smac;
      ArpRepr arp{at(5) & 1 ? ArpOp::Reply : ArpOp::Request, sender, src, MacAddr{},
                  kDestinations[at(6) % kDestinations.size()]};
      arp.emit(MutBytes(out).subspan(EthernetFrame::kHeaderLen));
      return 60;
    }
    case 2: {  // UDP (DHCP, DNS, TFTP, others)
      const std::uint16_t sport = kPorts[at(4) % kPorts.size()] + 1;
      const std::uint16_t dport = kPorts[at(5) % kPorts.size()];
      const Bytes payload = body.size() > 2 ? body.subspan(2) : Bytes{};
      const std::size_t len = std::min(payload.size(), out.size() - kL3 - UdpPacket::kHeaderLen);
      std::copy_n(payload.begin(), len, out.begin() + kL3 + UdpPacket::kHeaderLen);
      UdpRepr udp{sport, dport, static_cast<std::uint16_t>(len)};
      udp.emit(MutBytes(out).subspan(kL3, UdpPacket::kHeaderLen + len), IpAddr(src), IpAddr(dst));
      return emit_ipv4(out, smac, dmac, src, dst, IpProtocol::Udp, UdpPacket::kHeaderLen + len);
    }
    case 3: {  // ICMP echo
      const std::size_t len = std::min<std::size_t>(body.size(), 64);
      auto icmp = Icmpv4Repr::echo_request(at(4), at(5), body.first(len));
      const std::size_t n = icmp.emit(MutBytes(out).subspan(kL3));
      return emit_ipv4(out, smac, dmac, src, dst, IpProtocol::Icmp, n);
    }
    default: {  // TCP: header bytes as given (checksums are the translator's business)
      const std::size_t len = std::min<std::size_t>(std::max<std::size_t>(body.size(), 20), 80);
      std::fill_n(out.begin() + kL3, len, 0);
      std::copy_n(body.begin(), std::min(body.size(), len), out.begin() + kL3);
      out[kL3 + 2] = 0;
      out[kL3 + 3] = static_cast<std::uint8_t>(kPorts[at(5) % kPorts.size()]);
      out[kL3 + 12] = 0x50;
      return emit_ipv4(out, smac, dmac, src, dst, IpProtocol::Tcp, len);
    }
  }
}

bool is_dhcp(Bytes frame) {
  auto eth = EthernetFrame::parse(frame);
  if (!eth || eth->ethertype() != EtherType::Ipv4) return false;
  auto ip = Ipv4Packet::parse(eth->payload());
  if (!ip || ip->protocol() != IpProtocol::Udp) return false;
  auto udp = UdpPacket::parse(ip->payload());
  return udp && udp->dst_port() == 67;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::Error);  // every run is a new gateway: its rate limits start afresh
  EventLoop loop;
  NetworkOptions options;
  options.mode = NetworkMode::Nat;
  options.mtu = 1500;
  Network net(loop, "fuzz", options);
  nat::NatConfig cfg;
  cfg.restrict = true;                    // nothing is translated to the outside
  cfg.dns_upstream = {"127.0.0.1:9"};     // a closed loopback port
  cfg.mtu = options.mtu;
  auto& gw = static_cast<nat::NatGateway&>(
      net.add_port(std::make_unique<nat::NatGateway>(loop, net, net.next_port_id(), cfg)));
  const nat::NeighTable& neigh = gw.neighbours();
  auto bound = [&](Ipv4Addr a) -> std::optional<Binding> {
    const MacAddr* m = neigh.mac_of(IpAddr(a));
    if (!m) return std::nullopt;
    return Binding{neigh.port_of(IpAddr(a)), *m};
  };
  std::array<GuestPort*, kGuests> ports{};
  for (auto& p : ports) {
    p = static_cast<GuestPort*>(&net.add_port(std::make_unique<GuestPort>(loop, net, net.next_port_id())));
    p->bound = bound;
  }

  std::vector<std::uint8_t> frame(1600);
  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::size_t port_index = data[at] % kGuests;
    const std::uint8_t kind = data[at + 1];
    const std::size_t len = std::min<std::size_t>(data[at + 2], size - at - 3);
    const Bytes record(data + at + 3, len);
    at += 3 + len;
    std::fill(frame.begin(), frame.end(), 0);
    const std::size_t n = std::max<std::size_t>(build(frame, port_index, kind, record), 14);
    const Bytes f(frame.data(), std::min(n, frame.size()));

    std::array<std::optional<Binding>, kSources.size()> before;
    for (std::size_t i = 0; i < kSources.size(); ++i) before[i] = bound(kSources[i]);
    ports[port_index]->inject(f);
    if (is_dhcp(f)) continue;  // a lease may move a binding
    for (std::size_t i = 0; i < kSources.size(); ++i) {
      if (!before[i]) continue;
      auto now = bound(kSources[i]);
      check(now.has_value() && now->port == before[i]->port && now->mac == before[i]->mac);
    }
  }
  check(neigh.size() <= cfg.max_neighbours);
  // Only in-network guest addresses are ever bound.
  for (std::size_t i = 4; i < kSources.size(); ++i) check(!bound(kSources[i]));
  fuzz::sink(neigh.size());
  return 0;
}
