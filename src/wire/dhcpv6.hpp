// DHCPv6 client/server messages (RFC 8415) and the options vnet's server
// reads or writes: client and server identifiers (DUIDs), IA_NA with its
// IAADDR, option request, elapsed time, rapid commit, status code, DNS
// servers and domain list (RFC 3646).
//
// Dhcp6Message is a bounds-checked view: parse() walks the top-level
// options and, one level down, the options inside every IA_NA and IAADDR,
// so that the accessors and Dhcp6IaNa/Dhcp6IaAddr views afterwards cannot
// run past the message. Relay messages are Unsupported (vnet is on-link).
// Dhcp6Writer builds a message in a caller-provided buffer, with nested
// options (IA_NA → IAADDR → status) closed in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

namespace dhcp6_opt {
constexpr std::uint16_t kClientId = 1;
constexpr std::uint16_t kServerId = 2;
constexpr std::uint16_t kIaNa = 3;
constexpr std::uint16_t kIaTa = 4;
constexpr std::uint16_t kIaAddr = 5;
constexpr std::uint16_t kOro = 6;
constexpr std::uint16_t kPreference = 7;
constexpr std::uint16_t kElapsedTime = 8;
constexpr std::uint16_t kStatusCode = 13;
constexpr std::uint16_t kRapidCommit = 14;
constexpr std::uint16_t kDnsServers = 23;
constexpr std::uint16_t kDomainList = 24;
constexpr std::uint16_t kIaPd = 25;
constexpr std::uint16_t kInfRefreshTime = 32;
}  // namespace dhcp6_opt

enum class Dhcp6MessageType : std::uint8_t {
  Solicit = 1,
  Advertise = 2,
  Request = 3,
  Confirm = 4,
  Renew = 5,
  Rebind = 6,
  Reply = 7,
  Release = 8,
  Decline = 9,
  Reconfigure = 10,
  InformationRequest = 11,
  RelayForw = 12,
  RelayRepl = 13,
};

const char* to_string(Dhcp6MessageType t) noexcept;

enum class Dhcp6Status : std::uint16_t {
  Success = 0,
  UnspecFail = 1,
  NoAddrsAvail = 2,
  NoBinding = 3,
  NotOnLink = 4,
  UseMulticast = 5,
};

inline constexpr std::uint16_t kDhcp6ClientPort = 546;
inline constexpr std::uint16_t kDhcp6ServerPort = 547;
// A DUID is at most 128 bytes after its 2-byte type (RFC 8415 11.1).
inline constexpr std::size_t kMaxDuidLen = 130;

struct Dhcp6Option {
  std::uint16_t code = 0;
  Bytes data;
};

// Walks a DHCPv6 option area (4-byte code/length headers). A header or a
// length running past the area sets error() and stops.
class Dhcp6OptionReader {
 public:
  explicit Dhcp6OptionReader(Bytes area) : area_(area) {}
  std::optional<Dhcp6Option> next() noexcept;
  bool error() const { return error_; }

 private:
  Bytes area_;
  std::size_t pos_ = 0;
  bool error_ = false;
};

// IAADDR option data (RFC 8415 21.6).
struct Dhcp6IaAddr {
  static constexpr std::size_t kFixedLen = 24;
  Ipv6Addr addr;
  std::uint32_t preferred_lifetime = 0;
  std::uint32_t valid_lifetime = 0;
  Bytes options;
  // BadLength under 24 bytes; BadOption when its options are malformed.
  static Parsed<Dhcp6IaAddr> parse(Bytes data) noexcept;
};

// IA_NA option data (RFC 8415 21.4).
struct Dhcp6IaNa {
  static constexpr std::size_t kFixedLen = 12;
  std::uint32_t iaid = 0;
  std::uint32_t t1 = 0;
  std::uint32_t t2 = 0;
  Bytes options;
  // BadLength under 12 bytes; BadOption when its options (or those of an
  // IAADDR inside) are malformed.
  static Parsed<Dhcp6IaNa> parse(Bytes data) noexcept;
  // The first IAADDR inside, if any.
  std::optional<Dhcp6IaAddr> first_addr() const noexcept;
};

class Dhcp6Message {
 public:
  static constexpr std::size_t kHeaderLen = 4;

  Dhcp6Message() = default;
  // Truncated: under 4 bytes. Unsupported: a relay message. BadOption: an
  // option overruns its area, a nested IA option is malformed, a client or
  // server id is empty or longer than a DUID may be, ORO has odd length,
  // elapsed time is not 2 bytes, rapid commit is not empty.
  static Parsed<Dhcp6Message> parse(Bytes b) noexcept;

  Dhcp6MessageType type() const { return static_cast<Dhcp6MessageType>(buf_[0]); }
  std::uint32_t xid() const { return (std::uint32_t{buf_[1]} << 16) | (std::uint32_t{buf_[2]} << 8) | buf_[3]; }
  Bytes options() const { return buf_.subspan(kHeaderLen); }

  std::optional<Dhcp6Option> find(std::uint16_t code) const noexcept;
  Bytes client_id() const;  // empty when absent
  Bytes server_id() const;  // empty when absent
  bool rapid_commit() const { return find(dhcp6_opt::kRapidCommit).has_value(); }
  std::optional<std::uint16_t> elapsed_time() const;
  bool requests_option(std::uint16_t code) const;  // listed in ORO
  // Visits every IA_NA (already validated by parse()).
  template <class F>
  void for_each_ia_na(F&& f) const {
    Dhcp6OptionReader r(options());
    while (auto o = r.next()) {
      if (o->code != dhcp6_opt::kIaNa) continue;
      if (auto ia = Dhcp6IaNa::parse(o->data)) f(*ia);
    }
  }

  Bytes bytes() const { return buf_; }

 private:
  explicit Dhcp6Message(Bytes b) : buf_(b) {}
  Bytes buf_;
};

// Builds a message into buf. Every call after the buffer ran out is a
// no-op and ok() turns false, so a caller checks once at the end.
class Dhcp6Writer {
 public:
  Dhcp6Writer(MutBytes buf, Dhcp6MessageType type, std::uint32_t xid) noexcept;

  bool ok() const { return ok_; }
  void option(std::uint16_t code, Bytes data) noexcept;
  void option_u16(std::uint16_t code, std::uint16_t v) noexcept;
  void option_addrs(std::uint16_t code, std::span<const Ipv6Addr> addrs) noexcept;
  // RFC 1035 labels, uncompressed (RFC 8415 10); invalid names are skipped.
  void option_domains(std::uint16_t code, std::span<const std::string_view> names) noexcept;
  void status(Dhcp6Status code, std::string_view message) noexcept;
  // Nested options: begin() writes the header and fixed fields, end() fills
  // in the length. At most kMaxDepth open at once.
  void begin_ia_na(std::uint32_t iaid, std::uint32_t t1, std::uint32_t t2) noexcept;
  void begin_ia_addr(const Ipv6Addr& addr, std::uint32_t preferred, std::uint32_t valid) noexcept;
  void end() noexcept;
  // The message length, 0 when !ok() or an option is still open.
  std::size_t finish() noexcept;

 private:
  static constexpr std::size_t kMaxDepth = 2;
  bool reserve(std::size_t n) noexcept;
  void header(std::uint16_t code, std::uint16_t len) noexcept;

  MutBytes buf_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  std::size_t open_[kMaxDepth] = {};
  std::size_t depth_ = 0;
};

}  // namespace vnet::wire
