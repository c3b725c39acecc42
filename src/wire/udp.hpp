// UDP (RFC 768; IPv6 rules from RFC 8200 8.1).
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

class UdpPacket {
 public:
  static constexpr std::size_t kHeaderLen = 8;

  UdpPacket() = default;
  // Checks 8 <= length field <= buffer; the view is trimmed to the length
  // field. Pass the IP payload, not the rest of the frame.
  static Parsed<UdpPacket> parse(Bytes b) noexcept;

  std::uint16_t src_port() const { return load_be16(buf_, 0); }
  std::uint16_t dst_port() const { return load_be16(buf_, 2); }
  std::uint16_t length() const { return load_be16(buf_, 4); }
  std::uint16_t checksum() const { return load_be16(buf_, 6); }

  // Zero means "not computed", which is allowed only over IPv4.
  bool verify_checksum(const IpAddr& src, const IpAddr& dst) const;

  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(kHeaderLen); }

 protected:
  explicit UdpPacket(Bytes b) : buf_(b) {}
  Bytes buf_;
};

// Writable view for NAT. Port setters patch the checksum incrementally and
// leave an absent (zero) IPv4 checksum absent.
class UdpPacketMut : public UdpPacket {
 public:
  UdpPacketMut() = default;
  static Parsed<UdpPacketMut> parse(MutBytes b) noexcept;

  void set_src_port(std::uint16_t p);
  void set_dst_port(std::uint16_t p);
  // Accounts for a rewrite of the enclosing IP header's src or dst address.
  // old_addr and new_addr must be the same family.
  void adjust_for_address_change(const IpAddr& old_addr, const IpAddr& new_addr);
  void fill_checksum(const IpAddr& src, const IpAddr& dst);
  MutBytes payload_mut() const { return mut().subspan(kHeaderLen); }

 private:
  explicit UdpPacketMut(MutBytes b) : UdpPacket(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
  void set_port(std::size_t off, std::uint16_t p);
  void store_updated_checksum(std::uint16_t c);
};

struct UdpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint16_t payload_len = 0;

  static Parsed<UdpRepr> parse(const UdpPacket& p, const IpAddr& src, const IpAddr& dst,
                               bool verify_checksum = true) noexcept;
  static constexpr std::size_t header_len() { return UdpPacket::kHeaderLen; }
  std::size_t buffer_len() const { return header_len() + payload_len; }
  // buf must already hold the payload at buf[8..8+payload_len). Writes the
  // header with the checksum over the pseudo-header, header and payload.
  // Returns 8, or 0 when buf is too small or the length overflows.
  std::size_t emit(MutBytes buf, const IpAddr& src, const IpAddr& dst) const noexcept;

  friend bool operator==(const UdpRepr&, const UdpRepr&) = default;
};

}  // namespace vnet::wire
