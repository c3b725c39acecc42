// DHCPv6 messages from guests: the view, its nested IA walk and the
// accessors must stay in bounds on any input, and the server fed with it
// (inside a UDP datagram with a valid checksum) must never crash, must
// answer only with well-formed messages to port 546, and must keep its
// leases within max_leases.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_sink.hpp"
#include "nat/dhcp6.hpp"
#include "nat/neigh.hpp"
#include "wire/dhcpv6.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv6.hpp"
#include "wire/udp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

void exercise_view(const Dhcp6Message& m) {
  sink(static_cast<int>(m.type()) + m.xid() + m.client_id().size() + m.server_id().size());
  sink(m.rapid_commit() + m.requests_option(23));
  if (auto e = m.elapsed_time()) sink(*e);
  m.for_each_ia_na([](const Dhcp6IaNa& ia) {
    sink(ia.iaid + ia.t1 + ia.t2);
    if (auto a = ia.first_addr()) sink(a->addr.octets[15] + a->valid_lifetime + a->options.size());
  });
}

void check_sent(Bytes frame) {
  auto eth = EthernetFrame::parse(frame);
  check(eth.ok() && eth->ethertype() == EtherType::Ipv6);
  auto ip = Ipv6Packet::parse(eth->payload());
  check(ip.ok() && ip->next_header() == IpProtocol::Udp);
  auto udp = UdpPacket::parse(ip->payload());
  check(udp.ok() && udp->dst_port() == kDhcp6ClientPort && udp->verify_checksum(IpAddr(ip->src()), IpAddr(ip->dst())));
  auto m = Dhcp6Message::parse(udp->payload());
  check(m.ok() && !m->server_id().empty());
}

struct Lab {
  Lab() {
    cfg.max_leases = 8;
    nat::Ipv6Settings s;
    s.prefix = *Ipv6Addr::parse("fec0::");
    s.gateway = *Ipv6Addr::parse("fec0::2");
    s.dns = *Ipv6Addr::parse("fec0::3");
    s.mac = MacAddr{{0x52, 0x55, 10, 0, 2, 2}};
    s.domain = "vnet.test";
    server = std::make_unique<nat::Dhcp6Server>(out, &neigh, ctr, cfg, s);
  }
  nat::NatConfig cfg;
  nat::NatCounters ctr;
  nat::NeighTable neigh{cfg, ctr, 300 * kSeconds};
  nat::Ipv6ControlOut out{MacAddr{{0x52, 0x55, 10, 0, 2, 2}}, check_sent};
  std::unique_ptr<nat::Dhcp6Server> server;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  if (auto m = Dhcp6Message::parse(in)) exercise_view(*m);

  static Lab* lab = nullptr;
  static int runs = 0;
  if (!lab || ++runs % 512 == 0) {
    delete lab;
    lab = new Lab;
  }
  if (size > 1200) return 0;
  // A few guests on a few ports, each from its link-local address.
  const PortId port = size % 3;
  const MacAddr mac{{0x52, 0x54, 0, 0, 0, static_cast<std::uint8_t>(size % 5)}};
  const Ipv6Addr src = link_local_from_mac(mac), dst = *Ipv6Addr::parse("ff02::1:2");
  std::vector<std::uint8_t> udp(UdpPacket::kHeaderLen + size);
  if (size) std::copy(data, data + size, udp.begin() + UdpPacket::kHeaderLen);
  UdpRepr{kDhcp6ClientPort, kDhcp6ServerPort, static_cast<std::uint16_t>(size)}.emit(udp, IpAddr(src), IpAddr(dst));
  lab->server->on_message(port, mac, src, dst, udp);
  check(lab->server->status().size() <= lab->cfg.max_leases);
  return 0;
}
