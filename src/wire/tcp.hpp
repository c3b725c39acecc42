// TCP segment header and options (RFC 9293, RFC 7323, RFC 2018).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

// Bits of the flags byte (offset 13).
struct TcpFlag {
  static constexpr std::uint8_t Fin = 0x01;
  static constexpr std::uint8_t Syn = 0x02;
  static constexpr std::uint8_t Rst = 0x04;
  static constexpr std::uint8_t Psh = 0x08;
  static constexpr std::uint8_t Ack = 0x10;
  static constexpr std::uint8_t Urg = 0x20;
  static constexpr std::uint8_t Ece = 0x40;
  static constexpr std::uint8_t Cwr = 0x80;
};

struct TcpOptionKind {
  static constexpr std::uint8_t End = 0;
  static constexpr std::uint8_t Nop = 1;
  static constexpr std::uint8_t Mss = 2;
  static constexpr std::uint8_t WindowScale = 3;
  static constexpr std::uint8_t SackPermitted = 4;
  static constexpr std::uint8_t Sack = 5;
  static constexpr std::uint8_t Timestamps = 8;
};

// One option in TLV form; data excludes the kind and length bytes.
struct TcpOption {
  std::uint8_t kind = 0;
  Bytes data;
};

// Walks an option list. Every step consumes at least one byte, so a hostile
// list terminates in at most options.size() steps. NOPs are skipped; End
// stops the walk.
class TcpOptionReader {
 public:
  explicit TcpOptionReader(Bytes options) : rest_(options) {}
  // The next option, or nullopt at the end of the list or on a malformed
  // length (length < 2 or running past the list); error() distinguishes.
  std::optional<TcpOption> next() noexcept;
  std::optional<ParseError> error() const { return error_; }

 private:
  Bytes rest_;
  std::optional<ParseError> error_;
};

struct TcpSackBlock {
  std::uint32_t left = 0;
  std::uint32_t right = 0;
  friend bool operator==(const TcpSackBlock&, const TcpSackBlock&) = default;
};

struct TcpTimestamps {
  std::uint32_t tsval = 0;
  std::uint32_t tsecr = 0;
  friend bool operator==(const TcpTimestamps&, const TcpTimestamps&) = default;
};

struct TcpOptions {
  static constexpr std::uint8_t kMaxWindowScale = 14;  // RFC 7323 2.3
  static constexpr std::size_t kMaxSackBlocks = 4;     // 40-byte option space

  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;  // clamped to kMaxWindowScale
  bool sack_permitted = false;
  std::array<TcpSackBlock, kMaxSackBlocks> sack{};
  std::uint8_t sack_count = 0;
  std::optional<TcpTimestamps> timestamps;

  // BadOption on a malformed list or a known option with the wrong length.
  // Unknown options are skipped.
  static Parsed<TcpOptions> parse(Bytes options) noexcept;
  // Bytes emit() writes: each option is NOP-padded to a 4-byte boundary.
  std::size_t emit_len() const noexcept;
  // Writes the options; returns emit_len(), or 0 if buf is too small.
  std::size_t emit(MutBytes buf) const noexcept;

  friend bool operator==(const TcpOptions&, const TcpOptions&) = default;
};

class TcpPacket {
 public:
  static constexpr std::size_t kMinHeaderLen = 20;
  static constexpr std::size_t kMaxHeaderLen = 60;

  TcpPacket() = default;
  // Checks data offset >= 5 and that the header fits. TCP has no length
  // field: pass exactly the IP payload, as everything after the header is
  // taken as segment data.
  static Parsed<TcpPacket> parse(Bytes b) noexcept;

  std::uint16_t src_port() const { return load_be16(buf_, 0); }
  std::uint16_t dst_port() const { return load_be16(buf_, 2); }
  std::uint32_t seq_number() const { return load_be32(buf_, 4); }
  std::uint32_t ack_number() const { return load_be32(buf_, 8); }
  std::uint8_t data_offset() const { return buf_[12] >> 4; }
  std::size_t header_len() const { return std::size_t{data_offset()} * 4; }
  std::uint8_t flags() const { return buf_[13]; }
  bool fin() const { return (flags() & TcpFlag::Fin) != 0; }
  bool syn() const { return (flags() & TcpFlag::Syn) != 0; }
  bool rst() const { return (flags() & TcpFlag::Rst) != 0; }
  bool psh() const { return (flags() & TcpFlag::Psh) != 0; }
  bool ack() const { return (flags() & TcpFlag::Ack) != 0; }
  bool urg() const { return (flags() & TcpFlag::Urg) != 0; }
  bool ece() const { return (flags() & TcpFlag::Ece) != 0; }
  bool cwr() const { return (flags() & TcpFlag::Cwr) != 0; }
  std::uint16_t window() const { return load_be16(buf_, 14); }
  std::uint16_t checksum() const { return load_be16(buf_, 16); }
  std::uint16_t urgent_ptr() const { return load_be16(buf_, 18); }

  Bytes options() const { return buf_.subspan(kMinHeaderLen, header_len() - kMinHeaderLen); }
  Parsed<TcpOptions> parse_options() const noexcept { return TcpOptions::parse(options()); }
  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(header_len()); }
  // Sequence space consumed: data plus one each for SYN and FIN.
  std::size_t segment_len() const { return payload().size() + (syn() ? 1 : 0) + (fin() ? 1 : 0); }

  bool verify_checksum(const IpAddr& src, const IpAddr& dst) const;

 protected:
  explicit TcpPacket(Bytes b) : buf_(b) {}
  Bytes buf_;
};

// Writable view for NAT and MSS clamping; setters patch the checksum
// incrementally.
class TcpPacketMut : public TcpPacket {
 public:
  TcpPacketMut() = default;
  static Parsed<TcpPacketMut> parse(MutBytes b) noexcept;

  void set_src_port(std::uint16_t p);
  void set_dst_port(std::uint16_t p);
  // Accounts for a rewrite of the enclosing IP header's src or dst address.
  // old_addr and new_addr must be the same family.
  void adjust_for_address_change(const IpAddr& old_addr, const IpAddr& new_addr);
  // Lowers an MSS option above max_mss to max_mss. Returns true if the
  // segment changed. A malformed option list is left alone.
  bool clamp_mss(std::uint16_t max_mss);
  void fill_checksum(const IpAddr& src, const IpAddr& dst);
  MutBytes payload_mut() const { return mut().subspan(header_len()); }

 private:
  explicit TcpPacketMut(MutBytes b) : TcpPacket(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
  void set_checksum(std::uint16_t c) { store_be16(mut(), 16, c); }
  void set_port(std::size_t off, std::uint16_t p);
};

struct TcpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;  // TcpFlag bits
  std::uint16_t window = 0;
  std::uint16_t urgent_ptr = 0;
  TcpOptions options;
  std::uint16_t payload_len = 0;

  static Parsed<TcpRepr> parse(const TcpPacket& p, const IpAddr& src, const IpAddr& dst,
                               bool verify_checksum = true) noexcept;
  std::size_t header_len() const noexcept { return TcpPacket::kMinHeaderLen + options.emit_len(); }
  std::size_t buffer_len() const noexcept { return header_len() + payload_len; }
  // buf must already hold the payload at buf[header_len()..+payload_len).
  // Writes header and options with the checksum. Returns header_len(), or 0
  // when buf is too small or the options exceed 40 bytes.
  std::size_t emit(MutBytes buf, const IpAddr& src, const IpAddr& dst) const noexcept;

  friend bool operator==(const TcpRepr&, const TcpRepr&) = default;
};

}  // namespace vnet::wire
