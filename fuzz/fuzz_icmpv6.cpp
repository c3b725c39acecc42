// ICMPv6 Neighbor Discovery messages from guests: the view and its option
// walker must stay in bounds on any input, every option the accessors hand
// out must lie inside the message, and the gateway's NDP server fed with
// it (checksum fixed up so the input gets past it) must never crash, must
// send only well-formed NDP with hop limit 255, and must keep its
// neighbour table within its bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_sink.hpp"
#include "nat/ndp.hpp"
#include "nat/neigh.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmpv6.hpp"
#include "wire/ipv6.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

void exercise_view(const NdpMessage& m, const std::uint8_t* data, std::size_t size) {
  // Type-specific accessors are valid for their type only, as in the gateway.
  if (m.type() == Icmpv6Type::RouterAdvert) {
    sink(m.cur_hop_limit() + m.ra_flags() + m.router_lifetime() + m.reachable_time() + m.retrans_timer());
  }
  if (m.type() != Icmpv6Type::RouterSolicit && m.type() != Icmpv6Type::RouterAdvert) sink(m.target().octets[15]);
  if (m.type() == Icmpv6Type::NeighborAdvert) sink(m.na_flags());
  if (m.type() == Icmpv6Type::Redirect) sink(m.redirect_dest().octets[15]);
  if (auto mac = m.source_lladdr()) sink(mac->as_u64());
  if (auto mac = m.target_lladdr()) sink(mac->as_u64());
  NdpOptionReader r(m.options());
  while (auto o = r.next()) {
    check(o->data.data() >= data && o->data.data() + o->data.size() <= data + size);
    if (o->type == ndp_opt::kPrefixInfo) {
      if (auto p = NdpPrefixInfo::parse(o->data)) sink(p->prefix_len + p->valid_lifetime);
    } else if (o->type == ndp_opt::kRdnss) {
      if (auto v = NdpRdnssView::parse(o->data)) {
        for (std::size_t i = 0; i < v->count(); ++i) sink(v->at(i).octets[0]);
      }
    }
  }
  check(!r.error());
}

void check_sent(Bytes frame) {
  auto eth = EthernetFrame::parse(frame);
  check(eth.ok() && eth->ethertype() == EtherType::Ipv6);
  auto ip = Ipv6Packet::parse(eth->payload());
  check(ip.ok() && ip->hop_limit() == kNdpHopLimit && ip->next_header() == IpProtocol::Icmpv6);
  auto icmp = Icmpv6Packet::parse(ip->payload());
  check(icmp.ok() && icmp->verify_checksum(ip->src(), ip->dst()));
  check(NdpMessage::parse(ip->payload()).ok());
}

struct Lab {
  EventLoop loop;
  nat::NatConfig cfg;
  nat::NatCounters ctr;
  nat::NeighTable neigh{cfg, ctr, 300 * kSeconds};
  nat::Ipv6ControlOut out{MacAddr{{0x52, 0x55, 10, 0, 2, 2}}, check_sent};
  nat::NdpServer ndp{loop, out, neigh, ctr, settings()};

  static nat::Ipv6Settings settings() {
    nat::Ipv6Settings s;
    s.prefix = *Ipv6Addr::parse("fec0::");
    s.gateway = *Ipv6Addr::parse("fec0::2");
    s.dns = *Ipv6Addr::parse("fec0::3");
    s.mac = MacAddr{{0x52, 0x55, 10, 0, 2, 2}};
    s.domain = "vnet.test";
    return s;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  if (auto m = NdpMessage::parse(in)) exercise_view(*m, data, size);

  // The server: the first 17 bytes choose the sender (port, MAC, source
  // address, hop limit), the rest is the ICMPv6 message.
  static Lab* lab = nullptr;
  static int runs = 0;
  if (!lab || ++runs % 1024 == 0) {
    delete lab;
    lab = new Lab;
    lab->cfg.max_neighbours = 64;
  }
  if (size < 17 + 8) return 0;
  const PortId port = data[0] % 4;
  const MacAddr mac{{0x52, 0x54, 0, 0, static_cast<std::uint8_t>(data[1] % 8), static_cast<std::uint8_t>(data[2] % 4)}};
  Ipv6Addr src = *Ipv6Addr::parse(data[3] & 1 ? "fec0::" : "fe80::");
  if (data[3] & 2) src = Ipv6Addr{};
  for (int i = 0; i < 4; ++i) src.octets[12 + i] = data[4 + i];
  const Ipv6Addr dst = data[8] & 1 ? all_nodes_multicast() : solicited_node(*Ipv6Addr::parse("fec0::2"));
  const std::uint8_t hop = data[9] & 1 ? 255 : data[10];
  std::vector<std::uint8_t> msg(data + 17, data + size);
  msg[2] = msg[3] = 0;
  const std::uint16_t c = internet_checksum(
      msg, pseudo_header_v6(src, dst, static_cast<std::uint8_t>(IpProtocol::Icmpv6), static_cast<std::uint32_t>(msg.size())));
  msg[2] = static_cast<std::uint8_t>(c >> 8);
  msg[3] = static_cast<std::uint8_t>(c);
  lab->ndp.on_message(port, mac, src, dst, hop, msg);
  check(lab->neigh.size() <= lab->cfg.max_neighbours);
  return 0;
}
