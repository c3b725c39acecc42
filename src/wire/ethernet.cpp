#include "wire/ethernet.hpp"

#include <cstring>

namespace vnet::wire {

Parsed<EthernetFrame> EthernetFrame::parse(Bytes frame) noexcept {
  if (frame.size() < kHeaderLen) return ParseError::Truncated;
  EthernetFrame f(frame);
  if (f.has_vlan() && frame.size() < kVlanHeaderLen) return ParseError::Truncated;
  return f;
}

Parsed<EthernetFrameMut> EthernetFrameMut::parse(MutBytes frame) noexcept {
  auto ro = EthernetFrame::parse(frame);
  if (!ro) return ro.error();
  return EthernetFrameMut(frame);
}

void EthernetFrameMut::set_dst(const MacAddr& m) { std::memcpy(mut().data(), m.octets.data(), 6); }

void EthernetFrameMut::set_src(const MacAddr& m) { std::memcpy(mut().data() + 6, m.octets.data(), 6); }

EthernetRepr EthernetRepr::parse(const EthernetFrame& f) {
  EthernetRepr r{f.dst(), f.src(), f.ethertype(), std::nullopt};
  if (f.has_vlan()) r.vlan_tci = f.vlan_tci();
  return r;
}

std::size_t EthernetRepr::emit(MutBytes buf) const noexcept {
  const std::size_t len = header_len();
  if (buf.size() < len) return 0;
  std::memcpy(buf.data(), dst.octets.data(), 6);
  std::memcpy(buf.data() + 6, src.octets.data(), 6);
  if (vlan_tci) {
    store_be16(buf, 12, static_cast<std::uint16_t>(EtherType::Vlan));
    store_be16(buf, 14, *vlan_tci);
  }
  store_be16(buf, len - 2, static_cast<std::uint16_t>(ethertype));
  return len;
}

}  // namespace vnet::wire
