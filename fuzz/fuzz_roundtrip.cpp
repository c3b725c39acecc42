// Repr round trips: build IPv4/IPv6 + TCP/UDP/ICMP packets from fuzzed field
// values, emit, parse back, and require identical fields and valid checksums.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_sink.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;

namespace {

// Consumes fixed-size fields from the front of the input, zeros when exhausted.
class Reader {
 public:
  Reader(const std::uint8_t* d, std::size_t n) : rest_(d, n) {}
  std::uint8_t u8() { return take(1).empty() ? 0 : last_[0]; }
  std::uint16_t u16() { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
  std::uint32_t u32() { return (std::uint32_t{u16()} << 16) | u16(); }
  Bytes rest() const { return rest_; }

 private:
  Bytes take(std::size_t n) {
    if (rest_.size() < n) return {};
    last_ = rest_.first(n);
    rest_ = rest_.subspan(n);
    return last_;
  }
  Bytes rest_;
  Bytes last_;
};

void roundtrip_tcp(Reader& in, MutBytes l4, const IpAddr& src, const IpAddr& dst) {
  TcpRepr r;
  r.src_port = in.u16();
  r.dst_port = in.u16();
  r.seq = in.u32();
  r.ack = in.u32();
  r.flags = in.u8();
  r.window = in.u16();
  r.urgent_ptr = in.u16();
  const std::uint8_t which = in.u8();
  if (which & 1) r.options.mss = in.u16();
  if (which & 2) r.options.window_scale = static_cast<std::uint8_t>(in.u8() % 15);
  r.options.sack_permitted = (which & 4) != 0;
  if (which & 8) r.options.timestamps = TcpTimestamps{in.u32(), in.u32()};
  r.options.sack_count = static_cast<std::uint8_t>((which >> 4) % 4);
  for (std::size_t i = 0; i < r.options.sack_count; ++i) r.options.sack[i] = {in.u32(), in.u32()};
  r.payload_len = static_cast<std::uint16_t>(l4.size() >= r.header_len() ? l4.size() - r.header_len() : 0);

  const std::size_t n = r.emit(l4, src, dst);
  if (r.options.emit_len() > 40 || l4.size() < r.header_len()) {
    check(n == 0);
    return;
  }
  check(n == r.header_len());
  auto t = TcpPacket::parse(l4);
  check(t.ok());
  auto back = TcpRepr::parse(*t, src, dst);
  check(back.ok());
  check(*back == r);
}

void roundtrip_udp(MutBytes l4, Reader& in, const IpAddr& src, const IpAddr& dst) {
  UdpRepr r{in.u16(), in.u16(), 0};
  if (l4.size() < UdpPacket::kHeaderLen) {
    check(r.emit(l4, src, dst) == 0);
    return;
  }
  r.payload_len = static_cast<std::uint16_t>(l4.size() - UdpPacket::kHeaderLen);
  check(r.emit(l4, src, dst) == UdpPacket::kHeaderLen);
  auto u = UdpPacket::parse(l4);
  check(u.ok());
  auto back = UdpRepr::parse(*u, src, dst);
  check(back.ok());
  check(*back == r);
  check(u->checksum() != 0);
}

void roundtrip_icmp(MutBytes l4, Reader& in, const IpAddr& src, const IpAddr& dst) {
  if (l4.size() < kIcmpHeaderLen) return;
  const std::uint8_t type = in.u8(), code = in.u8();
  const std::uint32_t rest = in.u32();
  const Bytes data = l4.subspan(kIcmpHeaderLen);  // already in place: exercises aliasing
  if (src.is_v4()) {
    Icmpv4Repr r{static_cast<Icmpv4Type>(type), code, rest, data};
    check(r.emit(l4) == l4.size());
    auto back = Icmpv4Repr::parse(*Icmpv4Packet::parse(l4));
    check(back.ok() && back->type == r.type && back->code == code && back->rest_of_header == rest);
  } else {
    Icmpv6Repr r{static_cast<Icmpv6Type>(type), code, rest, data};
    check(r.emit(l4, src.v6(), dst.v6()) == l4.size());
    auto back = Icmpv6Repr::parse(*Icmpv6Packet::parse(l4), src.v6(), dst.v6());
    check(back.ok() && back->type == r.type && back->code == code && back->rest_of_header == rest);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  const std::uint8_t selector = in.u8();
  const bool v6 = selector & 1;
  const std::size_t payload_size = in.u16() % 1500;

  IpAddr src, dst;
  std::vector<std::uint8_t> pkt;
  std::size_t ip_hdr = 0;
  const std::uint8_t proto_sel = static_cast<std::uint8_t>((selector >> 1) % 3);
  const IpProtocol proto =
      proto_sel == 0 ? IpProtocol::Tcp : proto_sel == 1 ? IpProtocol::Udp : (v6 ? IpProtocol::Icmpv6 : IpProtocol::Icmp);

  if (v6) {
    Ipv6Addr s, d;
    for (auto& o : s.octets) o = in.u8();
    for (auto& o : d.octets) o = in.u8();
    // Keep both out of the v4-mapped range: IPv6 parsing refuses those.
    s.octets[0] = 0xfd;
    if (d.is_v4_mapped()) d.octets[0] = 0xfd;
    src = s;
    dst = d;
    Ipv6Repr r{s, d, proto, in.u8(), static_cast<std::uint16_t>(payload_size), in.u8(), in.u32() & 0xfffff};
    pkt.resize(r.buffer_len());
    ip_hdr = r.emit(pkt);
    check(ip_hdr == 40);
    auto back = Ipv6Packet::parse(pkt);
    check(back.ok() && Ipv6Repr::parse(*back) == r);
  } else {
    const Ipv4Addr s = Ipv4Addr::from_u32(in.u32()), d = Ipv4Addr::from_u32(in.u32());
    src = s;
    dst = d;
    Ipv4Repr r{s, d, proto, in.u8(), static_cast<std::uint16_t>(payload_size), in.u8(), in.u16(), (selector & 0x80) != 0};
    pkt.resize(r.buffer_len());
    ip_hdr = r.emit(pkt);
    check(ip_hdr == 20);
    auto back = Ipv4Packet::parse(pkt);
    check(back.ok() && back->verify_checksum());
    auto repr = Ipv4Repr::parse(*back);
    check(repr.ok() && *repr == r);
  }

  MutBytes l4 = MutBytes(pkt).subspan(ip_hdr);
  // Fill the payload from what is left of the input, so checksums cover real data.
  const Bytes fill = in.rest();
  for (std::size_t i = 0; i < l4.size() && !fill.empty(); ++i) l4[i] = fill[i % fill.size()];

  switch (proto) {
    case IpProtocol::Tcp: roundtrip_tcp(in, l4, src, dst); break;
    case IpProtocol::Udp: roundtrip_udp(l4, in, src, dst); break;
    default: roundtrip_icmp(l4, in, src, dst); break;
  }
  return 0;
}
