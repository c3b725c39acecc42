// Ethernet II frames, with at most one 802.1Q tag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/mac.hpp"

namespace vnet::wire {

// A plain enum class over the raw value: unknown ethertypes stay representable.
enum class EtherType : std::uint16_t {
  Ipv4 = 0x0800,
  Arp = 0x0806,
  Vlan = 0x8100,
  Ipv6 = 0x86dd,
};

class EthernetFrame {
 public:
  static constexpr std::size_t kHeaderLen = 14;
  static constexpr std::size_t kVlanTagLen = 4;
  static constexpr std::size_t kVlanHeaderLen = kHeaderLen + kVlanTagLen;
  static constexpr std::size_t kMinLen = kHeaderLen;

  EthernetFrame() = default;
  // Checks that the header (and the tag, if the outer ethertype says there is
  // one) fits. The FCS is assumed already stripped, as tap and vhost deliver.
  static Parsed<EthernetFrame> parse(Bytes frame) noexcept;

  MacAddr dst() const { return MacAddr::from_bytes(buf_.subspan(0, 6)); }
  MacAddr src() const { return MacAddr::from_bytes(buf_.subspan(6, 6)); }
  bool has_vlan() const { return outer_type() == static_cast<std::uint16_t>(EtherType::Vlan); }
  // Tag control info; 0 when untagged.
  std::uint16_t vlan_tci() const { return has_vlan() ? load_be16(buf_, 14) : 0; }
  std::uint16_t vlan_id() const { return vlan_tci() & 0x0fff; }
  std::uint8_t vlan_pcp() const { return static_cast<std::uint8_t>(vlan_tci() >> 13); }
  // The type of the payload: the inner ethertype for tagged frames.
  EtherType ethertype() const { return static_cast<EtherType>(load_be16(buf_, header_len() - 2)); }
  std::size_t header_len() const { return has_vlan() ? kVlanHeaderLen : kHeaderLen; }

  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(header_len()); }

 protected:
  explicit EthernetFrame(Bytes b) : buf_(b) {}
  std::uint16_t outer_type() const { return load_be16(buf_, 12); }

  Bytes buf_;
};

// Writable view for in-place rewrites (MAC rewriting on the NAT path).
class EthernetFrameMut : public EthernetFrame {
 public:
  EthernetFrameMut() = default;
  static Parsed<EthernetFrameMut> parse(MutBytes frame) noexcept;

  void set_dst(const MacAddr& m);
  void set_src(const MacAddr& m);
  MutBytes payload_mut() const { return mut().subspan(header_len()); }

 private:
  explicit EthernetFrameMut(MutBytes b) : EthernetFrame(b) {}
  // Safe: a Mut view is only ever constructed from a MutBytes.
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
};

struct EthernetRepr {
  MacAddr dst;
  MacAddr src;
  EtherType ethertype = EtherType::Ipv4;
  std::optional<std::uint16_t> vlan_tci;  // emits an 802.1Q tag when set

  static EthernetRepr parse(const EthernetFrame& f);
  std::size_t header_len() const {
    return vlan_tci ? EthernetFrame::kVlanHeaderLen : EthernetFrame::kHeaderLen;
  }
  // Writes the header at buf[0..header_len()); returns header_len(), or 0
  // when buf is too small.
  std::size_t emit(MutBytes buf) const noexcept;

  friend bool operator==(const EthernetRepr&, const EthernetRepr&) = default;
};

}  // namespace vnet::wire
