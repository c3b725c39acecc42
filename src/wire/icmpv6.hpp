// ICMPv6 messages beyond echo and unreachable (those live in wire/icmp.hpp):
// packet too big, and the Neighbor Discovery messages of RFC 4861 (router
// solicitation/advertisement, neighbour solicitation/advertisement,
// redirect) with their options, including RDNSS and DNSSL (RFC 8106).
//
// NdpMessage is a bounds-checked view: parse() checks the type, the code,
// the fixed part of the message and walks every option once (a zero length,
// which would make a walker spin forever, or a length past the end is
// BadOption), so the accessors afterwards stay in bounds. NdpRepr emits any
// of the five messages with the options vnet sends, checksum included.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/icmp.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::wire {

// Codes of destination unreachable (RFC 4443 3.1).
struct Icmpv6UnreachableCode {
  static constexpr std::uint8_t NoRoute = 0;
  static constexpr std::uint8_t AdminProhibited = 1;
  static constexpr std::uint8_t BeyondScope = 2;
  static constexpr std::uint8_t Address = 3;
  static constexpr std::uint8_t Port = 4;
};

// Packet too big (RFC 4443 3.2): the MTU of the next hop and as much of the
// original packet as fits the minimum MTU.
Icmpv6Repr icmpv6_packet_too_big(std::uint32_t mtu, Bytes original_ip_packet);

// NDP option types vnet reads or writes.
namespace ndp_opt {
constexpr std::uint8_t kSourceLinkAddr = 1;
constexpr std::uint8_t kTargetLinkAddr = 2;
constexpr std::uint8_t kPrefixInfo = 3;
constexpr std::uint8_t kRedirectedHeader = 4;
constexpr std::uint8_t kMtu = 5;
constexpr std::uint8_t kRdnss = 25;
constexpr std::uint8_t kDnssl = 31;
}  // namespace ndp_opt

// RA flags byte (RFC 4861 4.2): managed address configuration, other
// configuration.
inline constexpr std::uint8_t kRaFlagManaged = 0x80;
inline constexpr std::uint8_t kRaFlagOther = 0x40;
// NA flags (RFC 4861 4.4), the top bits of the first reserved byte.
inline constexpr std::uint8_t kNaFlagRouter = 0x80;
inline constexpr std::uint8_t kNaFlagSolicited = 0x40;
inline constexpr std::uint8_t kNaFlagOverride = 0x20;
// Prefix information flags (RFC 4861 4.6.2): on-link, autonomous.
inline constexpr std::uint8_t kPrefixFlagOnLink = 0x80;
inline constexpr std::uint8_t kPrefixFlagAuto = 0x40;

// NDP packets must arrive with hop limit 255 (RFC 4861 6.1/7.1): proof that
// no router forwarded them.
inline constexpr std::uint8_t kNdpHopLimit = 255;

struct NdpOption {
  std::uint8_t type = 0;
  Bytes data;  // the option after its type and length bytes (8*len - 2 bytes)
};

// Walks an NDP option area. A zero length or one that runs past the area
// sets error() and stops.
class NdpOptionReader {
 public:
  explicit NdpOptionReader(Bytes area) : area_(area) {}
  std::optional<NdpOption> next() noexcept;
  bool error() const { return error_; }

 private:
  Bytes area_;
  std::size_t pos_ = 0;
  bool error_ = false;
};

struct NdpPrefixInfo {
  std::uint8_t prefix_len = 64;
  std::uint8_t flags = kPrefixFlagOnLink | kPrefixFlagAuto;
  std::uint32_t valid_lifetime = 0;
  std::uint32_t preferred_lifetime = 0;
  Ipv6Addr prefix;

  static constexpr std::size_t kDataLen = 30;  // option length 4
  // BadOption unless data is exactly 30 bytes and prefix_len <= 128.
  static Parsed<NdpPrefixInfo> parse(Bytes data) noexcept;
  friend bool operator==(const NdpPrefixInfo&, const NdpPrefixInfo&) = default;
};

class NdpMessage {
 public:
  NdpMessage() = default;
  // b is the whole ICMPv6 message. Unsupported: not an NDP type.
  // BadOption: code other than 0 (RFC 4861 requires 0) or a bad option.
  // Truncated: shorter than the type's fixed part.
  static Parsed<NdpMessage> parse(Bytes b) noexcept;

  Icmpv6Type type() const { return static_cast<Icmpv6Type>(buf_[0]); }
  // RA fields.
  std::uint8_t cur_hop_limit() const { return buf_[4]; }
  std::uint8_t ra_flags() const { return buf_[5]; }
  std::uint16_t router_lifetime() const { return load_be16(buf_, 6); }
  std::uint32_t reachable_time() const { return load_be32(buf_, 8); }
  std::uint32_t retrans_timer() const { return load_be32(buf_, 12); }
  // NA flags (router, solicited, override).
  std::uint8_t na_flags() const { return buf_[4]; }
  // NS, NA and redirect: the address asked or announced.
  Ipv6Addr target() const { return Ipv6Addr::from_bytes(buf_.subspan(8, 16)); }
  // Redirect only.
  Ipv6Addr redirect_dest() const { return Ipv6Addr::from_bytes(buf_.subspan(24, 16)); }

  Bytes options() const { return buf_.subspan(options_offset_); }
  std::optional<NdpOption> find(std::uint8_t type) const noexcept;
  // Link-layer address options of Ethernet size; other sizes are ignored.
  std::optional<MacAddr> source_lladdr() const { return lladdr(ndp_opt::kSourceLinkAddr); }
  std::optional<MacAddr> target_lladdr() const { return lladdr(ndp_opt::kTargetLinkAddr); }
  Bytes bytes() const { return buf_; }

  // Offset of the options for a type, 0 when it is not an NDP type.
  static std::size_t fixed_len(Icmpv6Type t) noexcept;

 private:
  NdpMessage(Bytes b, std::size_t options_offset) : buf_(b), options_offset_(options_offset) {}
  std::optional<MacAddr> lladdr(std::uint8_t type) const;

  Bytes buf_;
  std::size_t options_offset_ = 0;
};

// RDNSS option data (RFC 8106 5.1): lifetime, then addresses. BadOption
// unless the data holds at least one whole address.
struct NdpRdnssView {
  std::uint32_t lifetime = 0;
  Bytes addresses;  // a multiple of 16 bytes
  std::size_t count() const { return addresses.size() / 16; }
  Ipv6Addr at(std::size_t i) const { return Ipv6Addr::from_bytes(addresses.subspan(16 * i, 16)); }
  static Parsed<NdpRdnssView> parse(Bytes data) noexcept;
};

// The options vnet writes. Lists are views the caller keeps alive.
struct NdpOptionsRepr {
  std::optional<MacAddr> source_lladdr;
  std::optional<MacAddr> target_lladdr;
  std::optional<NdpPrefixInfo> prefix;
  std::optional<std::uint32_t> mtu;
  std::uint32_t rdnss_lifetime = 0;
  std::span<const Ipv6Addr> rdnss;     // no option when empty
  std::uint32_t dnssl_lifetime = 0;
  std::span<const std::string_view> dnssl;  // no option when empty; invalid names are skipped
};

struct NdpRepr {
  Icmpv6Type type = Icmpv6Type::RouterSolicit;
  // RA
  std::uint8_t cur_hop_limit = 64;
  std::uint8_t ra_flags = 0;
  std::uint16_t router_lifetime = 0;
  std::uint32_t reachable_time = 0;
  std::uint32_t retrans_timer = 0;
  // NA
  std::uint8_t na_flags = 0;
  // NS, NA, redirect
  Ipv6Addr target;
  Ipv6Addr redirect_dest;
  NdpOptionsRepr options;

  std::size_t buffer_len() const noexcept;
  // Writes the whole ICMPv6 message with its checksum over the pseudo-header
  // of src/dst. Returns buffer_len(), or 0 when buf is too small or type is
  // not an NDP type.
  std::size_t emit(MutBytes buf, const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept;
};

// The solicited-node multicast address of addr (RFC 4291 2.7.1):
// ff02::1:ffXX:XXXX with the low 24 bits of addr.
Ipv6Addr solicited_node(const Ipv6Addr& addr);
// The Ethernet multicast MAC of an IPv6 multicast address (RFC 2464 7):
// 33:33 and its low 32 bits.
MacAddr ipv6_multicast_mac(const Ipv6Addr& group);
// fe80::/64 with the modified EUI-64 interface id of mac (RFC 4291 app. A).
Ipv6Addr link_local_from_mac(const MacAddr& mac);
// ff02::1 and ff02::2.
Ipv6Addr all_nodes_multicast();
Ipv6Addr all_routers_multicast();

}  // namespace vnet::wire
