#include "fabric/offload.hpp"

#include <cstring>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire/tcp.hpp"

namespace vnet {

using namespace vnet::wire;

namespace {

std::uint16_t load_host16(Bytes b, std::size_t off) {
  std::uint16_t v;
  std::memcpy(&v, b.data() + off, 2);
  return v;
}

void store_host16(MutBytes b, std::size_t off, std::uint16_t v) { std::memcpy(b.data() + off, &v, 2); }

// Fills a partial checksum: the field holds the pseudo-header sum, and the
// final value covers everything from csum_start to the end of the frame.
bool complete_checksum(MutBytes frame, std::size_t start, std::size_t offset) {
  if (start >= frame.size() || start + offset + 2 > frame.size()) return false;
  const std::uint16_t sum = checksum_finish(checksum_add(frame.subspan(start)));
  store_be16(frame, start + offset, sum);
  return true;
}

struct TcpLayout {
  std::size_t l3 = 0;      // start of the IP header
  std::size_t l4 = 0;      // start of the TCP header
  std::size_t payload = 0; // start of the TCP payload
  bool v4 = true;
};

std::optional<TcpLayout> tcp_layout(Bytes frame) {
  auto eth = EthernetFrame::parse(frame);
  if (!eth) return std::nullopt;
  TcpLayout t;
  t.l3 = eth->header_len();
  Bytes l3 = frame.subspan(t.l3);
  if (eth->ethertype() == EtherType::Ipv4) {
    auto ip = Ipv4Packet::parse(l3);
    if (!ip || ip->protocol() != IpProtocol::Tcp || ip->is_fragment()) return std::nullopt;
    t.l4 = t.l3 + ip->header_len();
  } else if (eth->ethertype() == EtherType::Ipv6) {
    auto ip = Ipv6Packet::parse(l3);
    if (!ip || ip->next_header() != IpProtocol::Tcp) return std::nullopt;
    t.l4 = t.l3 + Ipv6Packet::kHeaderLen;
    t.v4 = false;
  } else {
    return std::nullopt;
  }
  auto tcp = TcpPacket::parse(frame.subspan(t.l4));
  if (!tcp) return std::nullopt;
  t.payload = t.l4 + tcp->header_len();
  return t;
}

// Cuts a TSO segment into gso_size pieces with their own IP and TCP headers.
bool segment_tcp(Bytes frame, const Offload& off, MutBytes scratch, const std::function<void(Bytes)>& emit) {
  auto layout = tcp_layout(frame);
  if (!layout || off.gso_size == 0) return false;
  const TcpLayout t = *layout;
  const std::size_t headers = t.payload;
  const std::size_t total_payload = frame.size() - headers;
  if (headers + off.gso_size > scratch.size()) return false;
  const std::uint32_t seq0 = load_be32(frame, t.l4 + 4);
  const std::uint16_t id0 = t.v4 ? load_be16(frame, t.l3 + 4) : 0;
  const std::uint8_t flags0 = frame[t.l4 + 13];
  std::size_t done = 0;
  for (std::uint16_t i = 0; done < total_payload || (i == 0 && total_payload == 0); ++i) {
    const std::size_t chunk = std::min<std::size_t>(off.gso_size, total_payload - done);
    const bool last = done + chunk >= total_payload;
    std::memcpy(scratch.data(), frame.data(), headers);
    std::memcpy(scratch.data() + headers, frame.data() + headers + done, chunk);
    MutBytes seg = scratch.first(headers + chunk);
    const std::size_t l3_len = seg.size() - t.l3;
    const std::size_t l4_len = seg.size() - t.l4;
    std::uint32_t pseudo;
    if (t.v4) {
      store_be16(seg, t.l3 + 2, static_cast<std::uint16_t>(l3_len));
      store_be16(seg, t.l3 + 4, static_cast<std::uint16_t>(id0 + i));
      store_be16(seg, t.l3 + 10, 0);
      store_be16(seg, t.l3 + 10, internet_checksum(seg.subspan(t.l3, t.l4 - t.l3)));
      pseudo = pseudo_header_v4(Ipv4Addr::from_bytes(seg.subspan(t.l3 + 12, 4)),
                                Ipv4Addr::from_bytes(seg.subspan(t.l3 + 16, 4)), 6,
                                static_cast<std::uint16_t>(l4_len));
    } else {
      store_be16(seg, t.l3 + 4, static_cast<std::uint16_t>(l3_len - Ipv6Packet::kHeaderLen));
      pseudo = pseudo_header_v6(Ipv6Addr::from_bytes(seg.subspan(t.l3 + 8, 16)),
                                Ipv6Addr::from_bytes(seg.subspan(t.l3 + 24, 16)), 6,
                                static_cast<std::uint32_t>(l4_len));
    }
    store_be32(seg, t.l4 + 4, seq0 + static_cast<std::uint32_t>(done));
    std::uint8_t flags = flags0;
    if (!last) flags &= static_cast<std::uint8_t>(~(TcpFlag::Fin | TcpFlag::Psh));
    if (i != 0) flags &= static_cast<std::uint8_t>(~TcpFlag::Cwr);
    seg[t.l4 + 13] = flags;
    store_be16(seg, t.l4 + 16, 0);
    store_be16(seg, t.l4 + 16, checksum_finish(checksum_add(seg.subspan(t.l4), pseudo)));
    emit(seg);
    done += chunk;
    if (total_payload == 0) break;
  }
  return true;
}

}  // namespace

Offload Offload::parse(Bytes h) {
  Offload o;
  o.flags = h[0];
  o.gso_type = h[1];
  o.hdr_len = load_host16(h, 2);
  o.gso_size = load_host16(h, 4);
  o.csum_start = load_host16(h, 6);
  o.csum_offset = load_host16(h, 8);
  return o;
}

void Offload::emit(MutBytes h) const {
  h[0] = flags;
  h[1] = gso_type;
  store_host16(h, 2, hdr_len);
  store_host16(h, 4, gso_size);
  store_host16(h, 6, csum_start);
  store_host16(h, 8, csum_offset);
}

bool resolve_offload(Bytes frame, const Offload& off, MutBytes scratch, const std::function<void(Bytes)>& emit) {
  const std::uint8_t gso = off.gso_type & ~Offload::kGsoEcn;
  if (gso == Offload::kGsoTcpV4 || gso == Offload::kGsoTcpV6) return segment_tcp(frame, off, scratch, emit);
  if (gso != Offload::kGsoNone) return false;
  if (frame.size() > scratch.size()) return false;
  std::memcpy(scratch.data(), frame.data(), frame.size());
  MutBytes copy = scratch.first(frame.size());
  if (off.needs_csum() && !complete_checksum(copy, off.csum_start, off.csum_offset)) return false;
  emit(copy);
  return true;
}

}  // namespace vnet
