#include "wire/vxlan.hpp"

#include <cassert>

namespace vnet::wire {

namespace {
constexpr std::size_t kEthernetHeader = 14;
}

const char* to_string(VxlanError e) {
  switch (e) {
    case VxlanError::None: return "ok";
    case VxlanError::Truncated: return "shorter than a VXLAN header";
    case VxlanError::NoVni: return "VXLAN I flag clear (no VNI)";
    case VxlanError::InnerTooShort: return "inner frame shorter than an Ethernet header";
  }
  return "?";
}

VxlanParse parse_vxlan(Bytes datagram) {
  VxlanParse out;
  if (datagram.size() < kVxlanHeaderSize) {
    out.error = VxlanError::Truncated;
    return out;
  }
  if ((datagram[0] & kVxlanFlagVni) == 0) {
    out.error = VxlanError::NoVni;
    return out;
  }
  out.vni = load_be32(datagram, 4) >> 8;
  out.inner = datagram.subspan(kVxlanHeaderSize);
  if (out.inner.size() < kEthernetHeader) out.error = VxlanError::InnerTooShort;
  return out;
}

void emit_vxlan_header(MutBytes out, std::uint32_t vni) {
  assert(out.size() >= kVxlanHeaderSize && vni <= kVxlanMaxVni);
  out[0] = kVxlanFlagVni;
  out[1] = out[2] = out[3] = 0;
  store_be32(out, 4, vni << 8);
}

}  // namespace vnet::wire
