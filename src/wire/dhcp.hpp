// BOOTP/DHCPv4 messages (RFC 951, RFC 2131, options from RFC 2132).
//
// DhcpPacket is a bounds-checked view: parse() checks the fixed header, the
// magic cookie and walks every option area once (including the sname/file
// fields when option 52 "overload" says they carry options), so that the
// accessors afterwards can never run past the buffer. DhcpWriter builds a
// reply in a caller-provided buffer without allocating.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::wire {

// Option codes vnet reads or writes.
namespace dhcp_opt {
constexpr std::uint8_t kPad = 0;
constexpr std::uint8_t kSubnetMask = 1;
constexpr std::uint8_t kRouter = 3;
constexpr std::uint8_t kDns = 6;
constexpr std::uint8_t kHostname = 12;
constexpr std::uint8_t kDomainName = 15;
constexpr std::uint8_t kInterfaceMtu = 26;
constexpr std::uint8_t kBroadcastAddr = 28;
constexpr std::uint8_t kRequestedIp = 50;
constexpr std::uint8_t kLeaseTime = 51;
constexpr std::uint8_t kOverload = 52;
constexpr std::uint8_t kMessageType = 53;
constexpr std::uint8_t kServerId = 54;
constexpr std::uint8_t kParamRequestList = 55;
constexpr std::uint8_t kMessage = 56;
constexpr std::uint8_t kMaxMessageSize = 57;
constexpr std::uint8_t kRenewalTime = 58;
constexpr std::uint8_t kRebindingTime = 59;
constexpr std::uint8_t kClientId = 61;
constexpr std::uint8_t kTftpServer = 66;
constexpr std::uint8_t kBootfile = 67;
constexpr std::uint8_t kDomainSearch = 119;
constexpr std::uint8_t kEnd = 255;
}  // namespace dhcp_opt

enum class DhcpMessageType : std::uint8_t {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
};

const char* to_string(DhcpMessageType t) noexcept;

struct DhcpOption {
  std::uint8_t code = 0;
  Bytes data;
};

// Walks one option area (the options field, or an overloaded file/sname
// field). Stops at End or at the end of the area; a length byte that runs
// past the area sets error() and stops.
class DhcpOptionReader {
 public:
  explicit DhcpOptionReader(Bytes area) : area_(area) {}
  std::optional<DhcpOption> next() noexcept;
  bool error() const { return error_; }

 private:
  Bytes area_;
  std::size_t pos_ = 0;
  bool error_ = false;
  bool done_ = false;
};

class DhcpPacket {
 public:
  static constexpr std::size_t kFixedLen = 236;  // op .. file
  static constexpr std::size_t kCookieOffset = kFixedLen;
  static constexpr std::size_t kOptionsOffset = kFixedLen + 4;
  static constexpr std::size_t kMinLen = kOptionsOffset;
  static constexpr std::uint32_t kMagicCookie = 0x63825363;
  static constexpr std::uint16_t kBroadcastFlag = 0x8000;
  static constexpr std::uint8_t kBootRequest = 1;
  static constexpr std::uint8_t kBootReply = 2;
  static constexpr std::uint8_t kHtypeEthernet = 1;
  static constexpr std::size_t kSnameOffset = 44, kSnameLen = 64;
  static constexpr std::size_t kFileOffset = 108, kFileLen = 128;
  static constexpr std::size_t kChaddrOffset = 28, kChaddrLen = 16;

  DhcpPacket() = default;
  // Truncated: shorter than header + cookie. Unsupported: no DHCP magic
  // cookie (plain BOOTP with vendor data). BadLength: hlen > 16.
  // BadOption: an option runs past its area, or option 52 has a bad value.
  static Parsed<DhcpPacket> parse(Bytes b) noexcept;

  std::uint8_t op() const { return buf_[0]; }
  std::uint8_t htype() const { return buf_[1]; }
  std::uint8_t hlen() const { return buf_[2]; }
  std::uint8_t hops() const { return buf_[3]; }
  std::uint32_t xid() const { return load_be32(buf_, 4); }
  std::uint16_t secs() const { return load_be16(buf_, 8); }
  std::uint16_t flags() const { return load_be16(buf_, 10); }
  bool broadcast_flag() const { return (flags() & kBroadcastFlag) != 0; }
  Ipv4Addr ciaddr() const { return Ipv4Addr::from_bytes(buf_.subspan(12, 4)); }
  Ipv4Addr yiaddr() const { return Ipv4Addr::from_bytes(buf_.subspan(16, 4)); }
  Ipv4Addr siaddr() const { return Ipv4Addr::from_bytes(buf_.subspan(20, 4)); }
  Ipv4Addr giaddr() const { return Ipv4Addr::from_bytes(buf_.subspan(24, 4)); }
  // The hlen meaningful bytes of chaddr.
  Bytes chaddr() const { return buf_.subspan(kChaddrOffset, hlen()); }
  bool is_ethernet() const { return htype() == kHtypeEthernet && hlen() == 6; }
  // Only meaningful when is_ethernet().
  MacAddr client_mac() const { return MacAddr::from_bytes(buf_.subspan(kChaddrOffset, 6)); }
  // NUL-terminated text fields; empty when overloaded with options.
  std::string_view sname() const;
  std::string_view file() const;
  // Option 52: bit 0 = file holds options, bit 1 = sname holds options.
  std::uint8_t overload() const { return overload_; }

  // The first instance of an option, searched in RFC 2131 order: options,
  // then file, then sname when overloaded.
  std::optional<DhcpOption> find(std::uint8_t code) const noexcept;
  std::optional<DhcpMessageType> message_type() const;  // absent or out of range: nullopt
  std::optional<Ipv4Addr> requested_ip() const;
  std::optional<Ipv4Addr> server_id() const;
  std::optional<std::uint32_t> lease_time() const;
  Bytes client_id() const;             // empty when absent
  Bytes hostname() const;              // empty when absent
  Bytes param_request_list() const;    // empty when absent

  Bytes bytes() const { return buf_; }
  Bytes options_area() const { return buf_.subspan(kOptionsOffset); }

 private:
  explicit DhcpPacket(Bytes b) : buf_(b) {}
  std::optional<Ipv4Addr> find_addr(std::uint8_t code) const;
  Bytes find_bytes(std::uint8_t code) const;
  Bytes sname_area() const { return buf_.subspan(kSnameOffset, kSnameLen); }
  Bytes file_area() const { return buf_.subspan(kFileOffset, kFileLen); }

  Bytes buf_;
  std::uint8_t overload_ = 0;
};

// Header fields of a BOOTREPLY.
struct DhcpReplyHeader {
  std::uint32_t xid = 0;
  std::uint16_t flags = 0;
  Ipv4Addr ciaddr, yiaddr, siaddr, giaddr;
  std::uint8_t htype = DhcpPacket::kHtypeEthernet;
  std::uint8_t hlen = 6;
  std::array<std::uint8_t, DhcpPacket::kChaddrLen> chaddr{};
  std::string_view sname;  // truncated to 63 bytes (NUL kept)
  std::string_view file;   // truncated to 127 bytes
};

// Builds a BOOTREPLY into buf: header, cookie, options, End, then zero
// padding up to kMinReplyLen. Options that do not fit are refused (false)
// and leave the message valid, so callers can add the vital ones first.
class DhcpWriter {
 public:
  // Old PXE ROMs and DOS stacks ignore BOOTP messages under 300 bytes.
  static constexpr std::size_t kMinReplyLen = 300;

  // buf must hold at least kMinReplyLen bytes, else ok() is false.
  DhcpWriter(MutBytes buf, const DhcpReplyHeader& h) noexcept;

  bool ok() const { return ok_; }
  bool option(std::uint8_t code, Bytes data) noexcept;
  bool option_u8(std::uint8_t code, std::uint8_t v) noexcept;
  bool option_u16(std::uint8_t code, std::uint16_t v) noexcept;
  bool option_u32(std::uint8_t code, std::uint32_t v) noexcept;
  bool option_addr(std::uint8_t code, Ipv4Addr a) noexcept { return option(code, a.octets); }
  bool option_text(std::uint8_t code, std::string_view s) noexcept;
  // Writes End and the padding; returns the message length, 0 if !ok().
  std::size_t finish() noexcept;

 private:
  MutBytes buf_;
  std::size_t pos_ = DhcpPacket::kOptionsOffset;
  bool ok_ = false;
};

// RFC 1035 label encoding of one domain name ("example.com" ->
// 7example3com0), the value of option 119 (RFC 3397) for a single search
// domain. Returns the length written, 0 for an invalid name (empty label,
// label > 63 bytes, name > 255 bytes) or a too small buffer.
std::size_t dhcp_encode_domain(std::string_view name, MutBytes out) noexcept;

}  // namespace vnet::wire
