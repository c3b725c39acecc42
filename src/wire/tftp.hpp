// TFTP (RFC 1350) with option extension (RFC 2347: OACK, RFC 2348 blksize,
// RFC 2349 timeout and tsize).
//
// TFTP packets come from guests (PXE ROMs, boot loaders), so parsing is
// hostile-input code: every string must end in a NUL inside the datagram,
// and the views here point into the datagram (nothing is copied).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "wire/bytes.hpp"
#include "wire/error.hpp"

namespace vnet::wire {

enum class TftpOpcode : std::uint16_t { Rrq = 1, Wrq = 2, Data = 3, Ack = 4, Error = 5, Oack = 6 };

enum class TftpErrorCode : std::uint16_t {
  NotDefined = 0,
  FileNotFound = 1,
  AccessViolation = 2,
  DiskFull = 3,
  IllegalOperation = 4,
  UnknownTransferId = 5,
  FileExists = 6,
  NoSuchUser = 7,
  OptionRefused = 8,  // RFC 2347
};

// Any TFTP packet. parse() checks the opcode is known and the fixed part is
// present; ERROR packets must carry a NUL-terminated message.
class TftpPacket {
 public:
  static constexpr std::size_t kHeaderLen = 4;  // opcode + block (DATA/ACK) or code (ERROR)
  // Largest block RFC 2348 allows: 65535 - 20 (IP) - 8 (UDP) - 4 (TFTP) - 39 (historic slack).
  static constexpr std::uint16_t kMaxBlockSize = 65464;
  static constexpr std::uint16_t kMinBlockSize = 8;
  static constexpr std::uint16_t kDefaultBlockSize = 512;

  TftpPacket() = default;
  static Parsed<TftpPacket> parse(Bytes b) noexcept;

  TftpOpcode opcode() const { return static_cast<TftpOpcode>(load_be16(buf_, 0)); }
  // DATA and ACK.
  std::uint16_t block() const { return load_be16(buf_, 2); }
  // DATA.
  Bytes data() const { return buf_.subspan(kHeaderLen); }
  // ERROR.
  std::uint16_t error_code() const { return load_be16(buf_, 2); }
  std::string_view error_message() const;
  // RRQ, WRQ, OACK: the NUL-terminated strings after the opcode.
  Bytes strings() const { return buf_.subspan(2); }
  Bytes bytes() const { return buf_; }

 private:
  explicit TftpPacket(Bytes b) : buf_(b) {}
  Bytes buf_;
};

struct TftpOption {
  std::string_view name;
  std::string_view value;
};

// RRQ or WRQ: filename, mode, then name/value option pairs. Views point
// into the datagram. Up to kMaxOptions options are kept (RFC 2347 lets a
// server ignore what it does not know); the rest are checked and skipped.
struct TftpRequest {
  static constexpr std::size_t kMaxOptions = 8;

  TftpOpcode opcode = TftpOpcode::Rrq;
  std::string_view filename;
  std::string_view mode;
  std::array<TftpOption, kMaxOptions> options{};
  std::size_t option_count = 0;

  // Truncated: a string without its NUL; BadLength: empty filename, mode or
  // option name, or an option without value; Unsupported: not RRQ/WRQ.
  static Parsed<TftpRequest> parse(const TftpPacket& p) noexcept;
  // The value of an option, matched case-insensitively (RFC 2347).
  const TftpOption* find(std::string_view name) const;
};

// Case-insensitive ASCII comparison (TFTP modes and option names).
bool tftp_iequals(std::string_view a, std::string_view b);

// Builders: each writes into buf and returns the length written, or 0 if
// buf is too small.
std::size_t tftp_emit_data_header(MutBytes buf, std::uint16_t block);
std::size_t tftp_emit_ack(MutBytes buf, std::uint16_t block);
std::size_t tftp_emit_error(MutBytes buf, TftpErrorCode code, std::string_view message);
std::size_t tftp_emit_oack(MutBytes buf, const TftpOption* options, std::size_t count);
// RRQ/WRQ (for tests and tools).
std::size_t tftp_emit_request(MutBytes buf, TftpOpcode op, std::string_view filename, std::string_view mode,
                              const TftpOption* options, std::size_t count);

}  // namespace vnet::wire
