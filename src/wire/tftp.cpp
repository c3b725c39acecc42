#include "wire/tftp.hpp"

#include <cstring>

namespace vnet::wire {

namespace {

// Reads one NUL-terminated string at b[off]; advances off past the NUL.
// Returns false when no NUL lies inside b.
bool next_string(Bytes b, std::size_t& off, std::string_view& out) {
  if (off >= b.size()) return false;
  const void* nul = std::memchr(b.data() + off, 0, b.size() - off);
  if (!nul) return false;
  const std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - b.data());
  out = std::string_view(reinterpret_cast<const char*>(b.data() + off), end - off);
  off = end + 1;
  return true;
}

bool put_string(MutBytes buf, std::size_t& off, std::string_view s) {
  if (s.find('\0') != std::string_view::npos || off + s.size() + 1 > buf.size()) return false;
  std::memcpy(buf.data() + off, s.data(), s.size());
  off += s.size();
  buf[off++] = 0;
  return true;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool tftp_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

Parsed<TftpPacket> TftpPacket::parse(Bytes b) noexcept {
  if (b.size() < 2) return ParseError::Truncated;
  const std::uint16_t op = load_be16(b, 0);
  switch (static_cast<TftpOpcode>(op)) {
    case TftpOpcode::Rrq:
    case TftpOpcode::Wrq:
    case TftpOpcode::Oack:
      return TftpPacket(b);
    case TftpOpcode::Data:
    case TftpOpcode::Ack:
      if (b.size() < kHeaderLen) return ParseError::Truncated;
      return TftpPacket(b);
    case TftpOpcode::Error: {
      if (b.size() < kHeaderLen) return ParseError::Truncated;
      if (!std::memchr(b.data() + kHeaderLen, 0, b.size() - kHeaderLen)) return ParseError::Truncated;
      return TftpPacket(b);
    }
  }
  return ParseError::Unsupported;
}

std::string_view TftpPacket::error_message() const {
  std::size_t off = kHeaderLen;
  std::string_view msg;
  return next_string(buf_, off, msg) ? msg : std::string_view{};
}

Parsed<TftpRequest> TftpRequest::parse(const TftpPacket& p) noexcept {
  TftpRequest r;
  r.opcode = p.opcode();
  if (r.opcode != TftpOpcode::Rrq && r.opcode != TftpOpcode::Wrq) return ParseError::Unsupported;
  const Bytes b = p.bytes();
  std::size_t off = 2;
  if (!next_string(b, off, r.filename) || !next_string(b, off, r.mode)) return ParseError::Truncated;
  if (r.filename.empty() || r.mode.empty()) return ParseError::BadLength;
  // Options: pairs until the datagram ends. Some ROMs pad with NULs, so
  // trailing zero bytes after a complete pair are tolerated.
  while (off < b.size()) {
    if (b[off] == 0) {
      ++off;
      continue;
    }
    TftpOption opt;
    if (!next_string(b, off, opt.name) || !next_string(b, off, opt.value)) return ParseError::Truncated;
    if (opt.value.empty()) return ParseError::BadLength;
    if (r.option_count < kMaxOptions) r.options[r.option_count++] = opt;
  }
  return r;
}

const TftpOption* TftpRequest::find(std::string_view name) const {
  for (std::size_t i = 0; i < option_count; ++i)
    if (tftp_iequals(options[i].name, name)) return &options[i];
  return nullptr;
}

std::size_t tftp_emit_data_header(MutBytes buf, std::uint16_t block) {
  if (buf.size() < TftpPacket::kHeaderLen) return 0;
  store_be16(buf, 0, static_cast<std::uint16_t>(TftpOpcode::Data));
  store_be16(buf, 2, block);
  return TftpPacket::kHeaderLen;
}

std::size_t tftp_emit_ack(MutBytes buf, std::uint16_t block) {
  if (buf.size() < TftpPacket::kHeaderLen) return 0;
  store_be16(buf, 0, static_cast<std::uint16_t>(TftpOpcode::Ack));
  store_be16(buf, 2, block);
  return TftpPacket::kHeaderLen;
}

std::size_t tftp_emit_error(MutBytes buf, TftpErrorCode code, std::string_view message) {
  if (buf.size() < TftpPacket::kHeaderLen) return 0;
  store_be16(buf, 0, static_cast<std::uint16_t>(TftpOpcode::Error));
  store_be16(buf, 2, static_cast<std::uint16_t>(code));
  std::size_t off = TftpPacket::kHeaderLen;
  return put_string(buf, off, message) ? off : 0;
}

std::size_t tftp_emit_oack(MutBytes buf, const TftpOption* options, std::size_t count) {
  if (buf.size() < 2) return 0;
  store_be16(buf, 0, static_cast<std::uint16_t>(TftpOpcode::Oack));
  std::size_t off = 2;
  for (std::size_t i = 0; i < count; ++i)
    if (!put_string(buf, off, options[i].name) || !put_string(buf, off, options[i].value)) return 0;
  return off;
}

std::size_t tftp_emit_request(MutBytes buf, TftpOpcode op, std::string_view filename, std::string_view mode,
                              const TftpOption* options, std::size_t count) {
  if (buf.size() < 2) return 0;
  store_be16(buf, 0, static_cast<std::uint16_t>(op));
  std::size_t off = 2;
  if (!put_string(buf, off, filename) || !put_string(buf, off, mode)) return 0;
  for (std::size_t i = 0; i < count; ++i)
    if (!put_string(buf, off, options[i].name) || !put_string(buf, off, options[i].value)) return 0;
  return off;
}

}  // namespace vnet::wire
