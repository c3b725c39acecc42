#include "wire/dhcp.hpp"

#include <algorithm>
#include <cstring>

namespace vnet::wire {

namespace {

std::string_view c_string(Bytes field) {
  const auto* p = reinterpret_cast<const char*>(field.data());
  const void* nul = std::memchr(p, 0, field.size());
  return {p, nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - p) : field.size()};
}

// Copies s into a fixed field, always leaving room for the terminating NUL.
void store_c_string(MutBytes field, std::string_view s) {
  const std::size_t n = std::min(s.size(), field.size() - 1);
  if (n > 0) std::memcpy(field.data(), s.data(), n);  // an empty view may hold nullptr
}

bool area_is_well_formed(Bytes area) {
  DhcpOptionReader r(area);
  while (r.next()) {
  }
  return !r.error();
}

}  // namespace

const char* to_string(DhcpMessageType t) noexcept {
  switch (t) {
    case DhcpMessageType::Discover: return "DISCOVER";
    case DhcpMessageType::Offer: return "OFFER";
    case DhcpMessageType::Request: return "REQUEST";
    case DhcpMessageType::Decline: return "DECLINE";
    case DhcpMessageType::Ack: return "ACK";
    case DhcpMessageType::Nak: return "NAK";
    case DhcpMessageType::Release: return "RELEASE";
    case DhcpMessageType::Inform: return "INFORM";
  }
  return "?";
}

std::optional<DhcpOption> DhcpOptionReader::next() noexcept {
  while (!done_ && pos_ < area_.size()) {
    const std::uint8_t code = area_[pos_];
    if (code == dhcp_opt::kPad) {
      ++pos_;
      continue;
    }
    if (code == dhcp_opt::kEnd) break;
    // Compare by subtraction: pos_ + 2 + len cannot overflow here, but the
    // form below is obviously safe for any area size.
    if (area_.size() - pos_ < 2 || area_.size() - pos_ - 2 < area_[pos_ + 1]) {
      error_ = true;
      break;
    }
    const std::size_t len = area_[pos_ + 1];
    DhcpOption o{code, area_.subspan(pos_ + 2, len)};
    pos_ += 2 + len;
    return o;
  }
  done_ = true;
  return std::nullopt;
}

Parsed<DhcpPacket> DhcpPacket::parse(Bytes b) noexcept {
  if (b.size() < kMinLen) return ParseError::Truncated;
  DhcpPacket p(b);
  if (p.hlen() > kChaddrLen) return ParseError::BadLength;
  if (load_be32(b, kCookieOffset) != kMagicCookie) return ParseError::Unsupported;
  if (!area_is_well_formed(p.options_area())) return ParseError::BadOption;
  // Option 52 is only valid in the options field itself (RFC 2132 9.3).
  DhcpOptionReader r(p.options_area());
  while (auto o = r.next()) {
    if (o->code != dhcp_opt::kOverload) continue;
    if (o->data.size() != 1 || o->data[0] < 1 || o->data[0] > 3) return ParseError::BadOption;
    p.overload_ = o->data[0];
    break;
  }
  if ((p.overload_ & 1) && !area_is_well_formed(p.file_area())) return ParseError::BadOption;
  if ((p.overload_ & 2) && !area_is_well_formed(p.sname_area())) return ParseError::BadOption;
  return p;
}

std::string_view DhcpPacket::sname() const { return (overload_ & 2) ? std::string_view{} : c_string(sname_area()); }

std::string_view DhcpPacket::file() const { return (overload_ & 1) ? std::string_view{} : c_string(file_area()); }

std::optional<DhcpOption> DhcpPacket::find(std::uint8_t code) const noexcept {
  const Bytes areas[] = {options_area(), (overload_ & 1) ? file_area() : Bytes{},
                         (overload_ & 2) ? sname_area() : Bytes{}};
  for (Bytes area : areas) {
    DhcpOptionReader r(area);
    while (auto o = r.next())
      if (o->code == code) return o;
  }
  return std::nullopt;
}

std::optional<Ipv4Addr> DhcpPacket::find_addr(std::uint8_t code) const {
  auto o = find(code);
  if (!o || o->data.size() != 4) return std::nullopt;
  return Ipv4Addr::from_bytes(o->data);
}

Bytes DhcpPacket::find_bytes(std::uint8_t code) const {
  auto o = find(code);
  return o ? o->data : Bytes{};
}

std::optional<DhcpMessageType> DhcpPacket::message_type() const {
  auto o = find(dhcp_opt::kMessageType);
  if (!o || o->data.size() != 1 || o->data[0] < 1 || o->data[0] > 8) return std::nullopt;
  return static_cast<DhcpMessageType>(o->data[0]);
}

std::optional<Ipv4Addr> DhcpPacket::requested_ip() const { return find_addr(dhcp_opt::kRequestedIp); }
std::optional<Ipv4Addr> DhcpPacket::server_id() const { return find_addr(dhcp_opt::kServerId); }

std::optional<std::uint32_t> DhcpPacket::lease_time() const {
  auto o = find(dhcp_opt::kLeaseTime);
  if (!o || o->data.size() != 4) return std::nullopt;
  return load_be32(o->data, 0);
}

Bytes DhcpPacket::client_id() const { return find_bytes(dhcp_opt::kClientId); }
Bytes DhcpPacket::hostname() const { return find_bytes(dhcp_opt::kHostname); }
Bytes DhcpPacket::param_request_list() const { return find_bytes(dhcp_opt::kParamRequestList); }

DhcpWriter::DhcpWriter(MutBytes buf, const DhcpReplyHeader& h) noexcept : buf_(buf) {
  if (buf.size() < kMinReplyLen || h.hlen > DhcpPacket::kChaddrLen) return;
  std::memset(buf.data(), 0, DhcpPacket::kOptionsOffset);
  buf[0] = DhcpPacket::kBootReply;
  buf[1] = h.htype;
  buf[2] = h.hlen;
  store_be32(buf, 4, h.xid);
  store_be16(buf, 10, h.flags);
  std::memcpy(buf.data() + 12, h.ciaddr.octets.data(), 4);
  std::memcpy(buf.data() + 16, h.yiaddr.octets.data(), 4);
  std::memcpy(buf.data() + 20, h.siaddr.octets.data(), 4);
  std::memcpy(buf.data() + 24, h.giaddr.octets.data(), 4);
  std::memcpy(buf.data() + DhcpPacket::kChaddrOffset, h.chaddr.data(), h.chaddr.size());
  store_c_string(buf.subspan(DhcpPacket::kSnameOffset, DhcpPacket::kSnameLen), h.sname);
  store_c_string(buf.subspan(DhcpPacket::kFileOffset, DhcpPacket::kFileLen), h.file);
  store_be32(buf, DhcpPacket::kCookieOffset, DhcpPacket::kMagicCookie);
  ok_ = true;
}

bool DhcpWriter::option(std::uint8_t code, Bytes data) noexcept {
  // Keep one byte for End.
  if (!ok_ || data.size() > 255 || buf_.size() - pos_ < 2 + data.size() + 1) return false;
  buf_[pos_] = code;
  buf_[pos_ + 1] = static_cast<std::uint8_t>(data.size());
  if (!data.empty()) std::memcpy(buf_.data() + pos_ + 2, data.data(), data.size());
  pos_ += 2 + data.size();
  return true;
}

bool DhcpWriter::option_u8(std::uint8_t code, std::uint8_t v) noexcept { return option(code, Bytes(&v, 1)); }

bool DhcpWriter::option_u16(std::uint8_t code, std::uint16_t v) noexcept {
  std::uint8_t b[2];
  store_be16(b, 0, v);
  return option(code, b);
}

bool DhcpWriter::option_u32(std::uint8_t code, std::uint32_t v) noexcept {
  std::uint8_t b[4];
  store_be32(b, 0, v);
  return option(code, b);
}

bool DhcpWriter::option_text(std::uint8_t code, std::string_view s) noexcept {
  return option(code, Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

std::size_t DhcpWriter::finish() noexcept {
  if (!ok_) return 0;
  buf_[pos_++] = dhcp_opt::kEnd;
  if (pos_ < kMinReplyLen) {
    std::memset(buf_.data() + pos_, 0, kMinReplyLen - pos_);
    pos_ = kMinReplyLen;
  }
  ok_ = false;  // finished: further options would land behind End
  return pos_;
}

std::size_t dhcp_encode_domain(std::string_view name, MutBytes out) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return 0;
  std::size_t pos = 0;
  while (true) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || out.size() - pos < 1 + label.size() + 1) return 0;
    out[pos++] = static_cast<std::uint8_t>(label.size());
    std::memcpy(out.data() + pos, label.data(), label.size());
    pos += label.size();
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out[pos++] = 0;
  return pos;
}

}  // namespace vnet::wire
