// Whole-frame parser fuzzing: Ethernet -> ARP / IPv4 / IPv6 -> ICMP / UDP /
// TCP -> TCP options, reading every accessor along the way, then replaying
// the NAT setters on a copy and checking the incremental checksums.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_sink.hpp"
#include "wire/arp.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

void sink_addr(const IpAddr& a) {
  for (auto b : a.bytes()) sink(b);
}

void walk_tcp_options(const TcpPacket& t) {
  TcpOptionReader reader(t.options());
  while (auto o = reader.next()) {
    sink(o->kind);
    for (auto b : o->data) sink(b);
  }
  auto opts = t.parse_options();
  if (!opts) {
    sink(static_cast<int>(opts.error()));
    return;
  }
  sink(opts->mss.value_or(0));
  sink(opts->window_scale.value_or(0));
  check(!opts->window_scale || *opts->window_scale <= TcpOptions::kMaxWindowScale);
  sink(opts->sack_permitted);
  check(opts->sack_count <= TcpOptions::kMaxSackBlocks);
  for (std::size_t i = 0; i < opts->sack_count; ++i) sink(opts->sack[i].left ^ opts->sack[i].right);
  if (opts->timestamps) sink(opts->timestamps->tsval ^ opts->timestamps->tsecr);
}

void walk_tcp(Bytes l4, const IpAddr& src, const IpAddr& dst) {
  auto t = TcpPacket::parse(l4);
  if (!t) return;
  check(t->header_len() >= TcpPacket::kMinHeaderLen && t->header_len() <= l4.size());
  sink(t->src_port() ^ t->dst_port() ^ t->seq_number() ^ t->ack_number() ^ t->window() ^ t->urgent_ptr());
  sink(t->flags() + t->fin() + t->syn() + t->rst() + t->psh() + t->ack() + t->urg() + t->ece() + t->cwr());
  sink(t->checksum() + t->segment_len() + t->payload().size());
  sink(t->verify_checksum(src, dst));
  walk_tcp_options(*t);
  auto r = TcpRepr::parse(*t, src, dst, /*verify_checksum=*/false);
  if (r) sink(r->header_len());

  // NAT replay on a private copy whose checksum is first made valid, so the
  // incremental updates are checked on every input, not only lucky ones.
  std::vector<std::uint8_t> copy(l4.begin(), l4.end());
  auto m = TcpPacketMut::parse(copy);
  check(m.ok());
  auto mut = *m;
  mut.fill_checksum(src, dst);
  mut.set_src_port(static_cast<std::uint16_t>(t->dst_port() + 1));
  mut.set_dst_port(static_cast<std::uint16_t>(t->src_port() ^ 0x5a5a));
  mut.clamp_mss(1200);
  const IpAddr new_src = src.is_v4() ? IpAddr(Ipv4Addr{{198, 51, 100, 7}}) : IpAddr(*Ipv6Addr::parse("2001:db8::7"));
  mut.adjust_for_address_change(src, new_src);
  check(mut.verify_checksum(new_src, dst));
}

void walk_udp(Bytes l4, const IpAddr& src, const IpAddr& dst) {
  auto u = UdpPacket::parse(l4);
  if (!u) return;
  check(u->length() >= UdpPacket::kHeaderLen && u->bytes().size() == u->length());
  sink(u->src_port() ^ u->dst_port() ^ u->checksum() ^ u->payload().size());
  const bool valid = u->verify_checksum(src, dst);
  auto r = UdpRepr::parse(*u, src, dst);
  check(r.ok() == valid);

  std::vector<std::uint8_t> copy(u->bytes().begin(), u->bytes().end());
  auto mut = *UdpPacketMut::parse(copy);
  mut.fill_checksum(src, dst);
  mut.set_src_port(4242);
  mut.set_dst_port(static_cast<std::uint16_t>(u->src_port() + 3));
  const IpAddr new_dst = dst.is_v4() ? IpAddr(Ipv4Addr{{203, 0, 113, 9}}) : IpAddr(*Ipv6Addr::parse("fd00::9"));
  mut.adjust_for_address_change(dst, new_dst);
  check(mut.verify_checksum(src, new_dst));
}

void walk_icmpv4(Bytes l4) {
  auto p = Icmpv4Packet::parse(l4);
  if (!p) return;
  sink(static_cast<int>(p->type()) + p->code() + p->checksum() + p->rest_of_header());
  sink(p->echo_ident() ^ p->echo_seq() ^ p->next_hop_mtu() ^ p->is_error() ^ p->payload().size());
  sink(p->verify_checksum());
  std::vector<std::uint8_t> copy(l4.begin(), l4.end());
  auto mut = *Icmpv4PacketMut::parse(copy);
  mut.fill_checksum();
  mut.set_echo_ident(0x7777);
  check(mut.verify_checksum());
  if (p->is_error()) {
    auto quoted = Ipv4Packet::parse(p->payload());
    if (quoted) sink(quoted->src().to_u32());
  }
}

void walk_icmpv6(Bytes l4, const Ipv6Addr& src, const Ipv6Addr& dst) {
  auto p = Icmpv6Packet::parse(l4);
  if (!p) return;
  sink(static_cast<int>(p->type()) + p->code() + p->checksum() + p->rest_of_header());
  sink(p->echo_ident() ^ p->echo_seq() ^ p->is_error() ^ p->payload().size());
  auto r = Icmpv6Repr::parse(*p, src, dst);
  check(r.ok() == p->verify_checksum(src, dst));

  std::vector<std::uint8_t> copy(l4.begin(), l4.end());
  auto mut = *Icmpv6PacketMut::parse(copy);
  mut.fill_checksum(src, dst);
  mut.set_echo_ident(0x1357);
  const auto new_src = *Ipv6Addr::parse("fd00::42");
  mut.adjust_for_address_change(src, new_src);
  check(mut.verify_checksum(new_src, dst));
}

void walk_l4(IpProtocol proto, Bytes l4, const IpAddr& src, const IpAddr& dst) {
  switch (proto) {
    case IpProtocol::Tcp: walk_tcp(l4, src, dst); break;
    case IpProtocol::Udp: walk_udp(l4, src, dst); break;
    case IpProtocol::Icmp: walk_icmpv4(l4); break;
    case IpProtocol::Icmpv6:
      if (src.is_v6()) walk_icmpv6(l4, src.v6(), dst.v6());
      break;
    default: break;
  }
}

void walk_ipv4(Bytes b) {
  auto p = Ipv4Packet::parse(b);
  if (!p) return;
  check(p->header_len() >= 20 && p->total_len() <= b.size() && p->header_len() <= p->total_len());
  sink(p->version() + p->ihl() + p->tos() + p->dscp() + p->ecn() + p->total_len() + p->ident());
  sink(p->dont_fragment() + p->more_fragments() + p->frag_offset() + p->is_fragment() + p->ttl());
  sink(p->checksum() + p->src().to_u32() + p->dst().to_u32() + p->options().size());
  const bool valid = p->verify_checksum();
  check(Ipv4Repr::parse(*p).ok() == valid);

  std::vector<std::uint8_t> copy(p->bytes().begin(), p->bytes().end());
  auto mut = *Ipv4PacketMut::parse(copy);
  mut.fill_checksum();
  mut.set_src(Ipv4Addr{{10, 9, 8, 7}});
  mut.set_dst(p->src());
  mut.set_ttl(static_cast<std::uint8_t>(p->ttl() - 1));
  check(mut.verify_checksum());

  // Fragments after the first carry no L4 header.
  if (p->frag_offset() == 0) walk_l4(p->protocol(), p->payload(), p->src(), p->dst());
}

void walk_ipv6(Bytes b) {
  auto p = Ipv6Packet::parse(b);
  if (!p) return;
  check(p->bytes().size() == Ipv6Packet::kHeaderLen + p->payload_len());
  sink(p->version() + p->traffic_class() + p->flow_label() + p->hop_limit());
  auto r = Ipv6Repr::parse(*p);
  sink(r.payload_len);
  sink_addr(p->src());
  walk_l4(p->next_header(), p->payload(), p->src(), p->dst());
}

void walk_arp(Bytes b) {
  auto p = ArpPacket::parse(b);
  if (!p) return;
  check(p->hardware_len() == 6 && p->protocol_len() == 4);
  sink(p->operation() + p->sender_mac().as_u64() + p->target_mac().as_u64());
  sink(p->sender_ip().to_u32() ^ p->target_ip().to_u32());
  auto r = ArpRepr::parse(*p);
  if (!r) return;
  std::uint8_t out[ArpPacket::kLen];
  check(r->emit(out) == ArpPacket::kLen);
  check(std::memcmp(out, p->bytes().data(), ArpPacket::kLen) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto f = EthernetFrame::parse(Bytes(data, size));
  if (!f) return 0;
  sink(f->dst().as_u64() ^ f->src().as_u64() ^ f->vlan_tci() ^ f->vlan_id() ^ f->vlan_pcp());
  check(f->header_len() + f->payload().size() == size);
  auto repr = EthernetRepr::parse(*f);
  std::uint8_t hdr[EthernetFrame::kVlanHeaderLen];
  check(repr.emit(hdr) == f->header_len());
  check(std::memcmp(hdr, data, f->header_len()) == 0);

  switch (f->ethertype()) {
    case EtherType::Arp: walk_arp(f->payload()); break;
    case EtherType::Ipv4: walk_ipv4(f->payload()); break;
    case EtherType::Ipv6: walk_ipv6(f->payload()); break;
    default: break;
  }
  return 0;
}
