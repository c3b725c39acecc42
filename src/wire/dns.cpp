#include "wire/dns.hpp"

#include <algorithm>
#include <cstring>

namespace vnet::wire {

namespace {

// Real names need a handful of jumps; the strictly-backward rule already
// guarantees termination, this caps the work per name.
constexpr int kMaxJumps = 32;
constexpr std::size_t kRrFixedLen = 10;  // type, class, ttl, rdlength

std::uint8_t ascii_lower(std::uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + 32) : c; }

// Skips one resource record at off; returns the offset after it.
Parsed<std::size_t> skip_rr(Bytes msg, std::size_t off, std::uint16_t* type, std::uint16_t* rclass) noexcept {
  DnsName scratch;
  auto after = read_dns_name(msg, off, scratch);
  if (!after) return after.error();
  std::size_t pos = *after;
  if (msg.size() - pos < kRrFixedLen) return ParseError::Truncated;
  *type = load_be16(msg, pos);
  *rclass = load_be16(msg, pos + 2);
  const std::size_t rdlen = load_be16(msg, pos + 8);
  pos += kRrFixedLen;
  if (msg.size() - pos < rdlen) return ParseError::Truncated;
  return pos + rdlen;
}

}  // namespace

std::string DnsName::to_string() const {
  std::string s;
  std::size_t pos = 0;
  while (pos < len && data[pos] != 0) {
    const std::size_t l = data[pos];
    s.append(reinterpret_cast<const char*>(data.data() + pos + 1), l);
    s.push_back('.');
    pos += 1 + l;
  }
  return s.empty() ? "." : s;
}

bool DnsName::equals(const DnsName& o) const {
  if (len != o.len) return false;
  for (std::size_t i = 0; i < len; ++i)
    if (ascii_lower(data[i]) != ascii_lower(o.data[i])) return false;
  return true;
}

Parsed<std::size_t> read_dns_name(Bytes msg, std::size_t off, DnsName& out) noexcept {
  out.len = 0;
  std::size_t pos = off;
  // A pointer refers to a name written earlier, so after a jump everything
  // read must lie before the pointer that was followed: `limit` only ever
  // moves down, which rules out loops and names that run into later data.
  std::size_t limit = msg.size();
  std::optional<std::size_t> end_after;
  int jumps = 0;
  for (;;) {
    if (pos >= limit) return pos >= msg.size() ? ParseError::Truncated : ParseError::BadLength;
    const std::uint8_t b = msg[pos];
    if (b == 0) {
      if (out.len + 1u > DnsName::kMaxLen) return ParseError::BadLength;
      out.data[out.len++] = 0;
      return end_after.value_or(pos + 1);
    }
    if ((b & 0xc0) == 0xc0) {
      if (pos + 1 >= limit) return pos + 1 >= msg.size() ? ParseError::Truncated : ParseError::BadLength;
      const std::size_t target = (std::size_t{b & 0x3fu} << 8) | msg[pos + 1];
      // Names never live in the 12-byte header.
      if (target >= pos || target < DnsMessage::kHeaderLen || ++jumps > kMaxJumps) return ParseError::BadLength;
      if (!end_after) end_after = pos + 2;
      limit = pos;
      pos = target;
      continue;
    }
    if ((b & 0xc0) != 0) return ParseError::Unsupported;  // extended/bitstring labels
    const std::size_t label = b;                           // <= 63 by the two top bits
    if (limit - pos - 1 < label) return limit == msg.size() ? ParseError::Truncated : ParseError::BadLength;
    // Leave room for the root's zero byte.
    if (out.len + 1u + label + 1u > DnsName::kMaxLen) return ParseError::BadLength;
    std::memcpy(out.data.data() + out.len, msg.data() + pos, 1 + label);
    out.len = static_cast<std::uint8_t>(out.len + 1 + label);
    pos += 1 + label;
  }
}

Parsed<DnsMessage> DnsMessage::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  DnsMessage m(b);
  std::size_t pos = kHeaderLen;
  DnsName scratch;
  for (std::uint16_t i = 0; i < m.qdcount(); ++i) {
    auto after = read_dns_name(b, pos, scratch);
    if (!after) return after.error();
    pos = *after;
    if (b.size() - pos < 4) return ParseError::Truncated;
    pos += 4;
  }
  m.questions_end_ = pos;
  return m;
}

Parsed<DnsMessage> DnsMessage::parse_query(Bytes b) noexcept {
  auto m = parse(b);
  if (!m) return m;
  if (m->is_response() || m->opcode() != 0) return ParseError::Unsupported;
  if (m->qdcount() != 1) return ParseError::BadLength;
  return m;
}

Parsed<DnsQuestion> DnsMessage::question() const noexcept {
  if (qdcount() == 0) return ParseError::BadLength;
  DnsQuestion q;
  auto after = read_dns_name(buf_, kHeaderLen, q.name);
  if (!after) return after.error();
  if (buf_.size() - *after < 4) return ParseError::Truncated;
  q.qtype = load_be16(buf_, *after);
  q.qclass = load_be16(buf_, *after + 2);
  return q;
}

std::optional<std::uint16_t> DnsMessage::edns_udp_size() const noexcept {
  std::size_t pos = questions_end_;
  const std::uint32_t before_additional = std::uint32_t{ancount()} + nscount();
  const std::uint32_t total = before_additional + arcount();
  for (std::uint32_t i = 0; i < total; ++i) {
    std::uint16_t type = 0, rclass = 0;
    auto after = skip_rr(buf_, pos, &type, &rclass);
    if (!after) return std::nullopt;
    pos = *after;
    // Values under 512 are treated as 512 (RFC 6891 6.2.5).
    if (i >= before_additional && type == kTypeOpt) return std::max(rclass, kClassicUdpSize);
  }
  return std::nullopt;
}

std::size_t dns_truncate(const DnsMessage& answer, MutBytes out) noexcept {
  const std::size_t n = answer.questions_end();
  if (out.size() < n) return 0;
  std::memmove(out.data(), answer.bytes().data(), n);
  out[2] |= 0x02;
  store_be16(out, 6, 0);
  store_be16(out, 8, 0);
  store_be16(out, 10, 0);
  return n;
}

}  // namespace vnet::wire
