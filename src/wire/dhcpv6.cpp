#include "wire/dhcpv6.hpp"

#include <cstring>

#include "wire/dhcp.hpp"

namespace vnet::wire {

namespace {

constexpr std::size_t kOptHeader = 4;

bool area_is_well_formed(Bytes area) {
  Dhcp6OptionReader r(area);
  while (r.next()) {
  }
  return !r.error();
}

bool duid_ok(Bytes id) { return id.size() >= 2 && id.size() <= kMaxDuidLen; }

// Checks one top-level option's own shape and, for IA_NA, everything nested.
bool option_ok(const Dhcp6Option& o) {
  switch (o.code) {
    case dhcp6_opt::kClientId:
    case dhcp6_opt::kServerId: return duid_ok(o.data);
    case dhcp6_opt::kOro: return o.data.size() % 2 == 0;
    case dhcp6_opt::kElapsedTime: return o.data.size() == 2;
    case dhcp6_opt::kRapidCommit: return o.data.empty();
    case dhcp6_opt::kIaNa: return Dhcp6IaNa::parse(o.data).ok();
    default: return true;
  }
}

}  // namespace

const char* to_string(Dhcp6MessageType t) noexcept {
  switch (t) {
    case Dhcp6MessageType::Solicit: return "SOLICIT";
    case Dhcp6MessageType::Advertise: return "ADVERTISE";
    case Dhcp6MessageType::Request: return "REQUEST";
    case Dhcp6MessageType::Confirm: return "CONFIRM";
    case Dhcp6MessageType::Renew: return "RENEW";
    case Dhcp6MessageType::Rebind: return "REBIND";
    case Dhcp6MessageType::Reply: return "REPLY";
    case Dhcp6MessageType::Release: return "RELEASE";
    case Dhcp6MessageType::Decline: return "DECLINE";
    case Dhcp6MessageType::Reconfigure: return "RECONFIGURE";
    case Dhcp6MessageType::InformationRequest: return "INFORMATION-REQUEST";
    case Dhcp6MessageType::RelayForw: return "RELAY-FORW";
    case Dhcp6MessageType::RelayRepl: return "RELAY-REPL";
  }
  return "?";
}

std::optional<Dhcp6Option> Dhcp6OptionReader::next() noexcept {
  if (error_ || pos_ >= area_.size()) return std::nullopt;
  const std::size_t left = area_.size() - pos_;
  if (left < kOptHeader || left - kOptHeader < load_be16(area_, pos_ + 2)) {
    error_ = true;
    return std::nullopt;
  }
  const std::size_t len = load_be16(area_, pos_ + 2);
  Dhcp6Option o{load_be16(area_, pos_), area_.subspan(pos_ + kOptHeader, len)};
  pos_ += kOptHeader + len;
  return o;
}

Parsed<Dhcp6IaAddr> Dhcp6IaAddr::parse(Bytes data) noexcept {
  if (data.size() < kFixedLen) return ParseError::BadLength;
  Dhcp6IaAddr a;
  a.addr = Ipv6Addr::from_bytes(data.first(16));
  a.preferred_lifetime = load_be32(data, 16);
  a.valid_lifetime = load_be32(data, 20);
  a.options = data.subspan(kFixedLen);
  if (!area_is_well_formed(a.options)) return ParseError::BadOption;
  return a;
}

Parsed<Dhcp6IaNa> Dhcp6IaNa::parse(Bytes data) noexcept {
  if (data.size() < kFixedLen) return ParseError::BadLength;
  Dhcp6IaNa ia;
  ia.iaid = load_be32(data, 0);
  ia.t1 = load_be32(data, 4);
  ia.t2 = load_be32(data, 8);
  ia.options = data.subspan(kFixedLen);
  Dhcp6OptionReader r(ia.options);
  while (auto o = r.next()) {
    // An IAADDR is the only nesting vnet follows, and only one level deep:
    // its own options (a status code) are walked but not descended into.
    if (o->code == dhcp6_opt::kIaAddr && !Dhcp6IaAddr::parse(o->data)) return ParseError::BadOption;
  }
  if (r.error()) return ParseError::BadOption;
  return ia;
}

std::optional<Dhcp6IaAddr> Dhcp6IaNa::first_addr() const noexcept {
  Dhcp6OptionReader r(options);
  while (auto o = r.next()) {
    if (o->code != dhcp6_opt::kIaAddr) continue;
    if (auto a = Dhcp6IaAddr::parse(o->data)) return *a;
  }
  return std::nullopt;
}

Parsed<Dhcp6Message> Dhcp6Message::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  if (b[0] == static_cast<std::uint8_t>(Dhcp6MessageType::RelayForw) ||
      b[0] == static_cast<std::uint8_t>(Dhcp6MessageType::RelayRepl))
    return ParseError::Unsupported;
  Dhcp6OptionReader r(b.subspan(kHeaderLen));
  while (auto o = r.next()) {
    if (!option_ok(*o)) return ParseError::BadOption;
  }
  if (r.error()) return ParseError::BadOption;
  return Dhcp6Message(b);
}

std::optional<Dhcp6Option> Dhcp6Message::find(std::uint16_t code) const noexcept {
  Dhcp6OptionReader r(options());
  while (auto o = r.next()) {
    if (o->code == code) return o;
  }
  return std::nullopt;
}

Bytes Dhcp6Message::client_id() const {
  auto o = find(dhcp6_opt::kClientId);
  return o ? o->data : Bytes{};
}

Bytes Dhcp6Message::server_id() const {
  auto o = find(dhcp6_opt::kServerId);
  return o ? o->data : Bytes{};
}

std::optional<std::uint16_t> Dhcp6Message::elapsed_time() const {
  auto o = find(dhcp6_opt::kElapsedTime);
  if (!o) return std::nullopt;
  return load_be16(o->data, 0);
}

bool Dhcp6Message::requests_option(std::uint16_t code) const {
  auto o = find(dhcp6_opt::kOro);
  if (!o) return false;
  for (std::size_t i = 0; i + 1 < o->data.size(); i += 2) {
    if (load_be16(o->data, i) == code) return true;
  }
  return false;
}

Dhcp6Writer::Dhcp6Writer(MutBytes buf, Dhcp6MessageType type, std::uint32_t xid) noexcept : buf_(buf) {
  if (!reserve(Dhcp6Message::kHeaderLen)) return;
  buf_[0] = static_cast<std::uint8_t>(type);
  buf_[1] = static_cast<std::uint8_t>(xid >> 16);
  buf_[2] = static_cast<std::uint8_t>(xid >> 8);
  buf_[3] = static_cast<std::uint8_t>(xid);
  pos_ = Dhcp6Message::kHeaderLen;
}

bool Dhcp6Writer::reserve(std::size_t n) noexcept {
  if (!ok_ || buf_.size() - pos_ < n) ok_ = false;
  return ok_;
}

void Dhcp6Writer::header(std::uint16_t code, std::uint16_t len) noexcept {
  store_be16(buf_, pos_, code);
  store_be16(buf_, pos_ + 2, len);
  pos_ += kOptHeader;
}

void Dhcp6Writer::option(std::uint16_t code, Bytes data) noexcept {
  if (data.size() > 0xffff || !reserve(kOptHeader + data.size())) return;
  header(code, static_cast<std::uint16_t>(data.size()));
  if (!data.empty()) std::memcpy(buf_.data() + pos_, data.data(), data.size());
  pos_ += data.size();
}

void Dhcp6Writer::option_u16(std::uint16_t code, std::uint16_t v) noexcept {
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  option(code, b);
}

void Dhcp6Writer::option_addrs(std::uint16_t code, std::span<const Ipv6Addr> addrs) noexcept {
  if (!reserve(kOptHeader + 16 * addrs.size())) return;
  header(code, static_cast<std::uint16_t>(16 * addrs.size()));
  for (const auto& a : addrs) {
    std::memcpy(buf_.data() + pos_, a.octets.data(), 16);
    pos_ += 16;
  }
}

void Dhcp6Writer::option_domains(std::uint16_t code, std::span<const std::string_view> names) noexcept {
  if (!reserve(kOptHeader)) return;
  const std::size_t start = pos_;
  pos_ += kOptHeader;
  for (auto name : names) pos_ += dhcp_encode_domain(name, buf_.subspan(pos_));
  const std::size_t len = pos_ - start - kOptHeader;
  store_be16(buf_, start, code);
  store_be16(buf_, start + 2, static_cast<std::uint16_t>(len));
  if (len == 0) pos_ = start;  // nothing valid to say: no option
}

void Dhcp6Writer::status(Dhcp6Status code, std::string_view message) noexcept {
  if (message.size() > 0xff || !reserve(kOptHeader + 2 + message.size())) return;
  header(dhcp6_opt::kStatusCode, static_cast<std::uint16_t>(2 + message.size()));
  store_be16(buf_, pos_, static_cast<std::uint16_t>(code));
  if (!message.empty()) std::memcpy(buf_.data() + pos_ + 2, message.data(), message.size());
  pos_ += 2 + message.size();
}

void Dhcp6Writer::begin_ia_na(std::uint32_t iaid, std::uint32_t t1, std::uint32_t t2) noexcept {
  if (depth_ >= kMaxDepth || !reserve(kOptHeader + Dhcp6IaNa::kFixedLen)) {
    ok_ = false;
    return;
  }
  open_[depth_++] = pos_;
  header(dhcp6_opt::kIaNa, 0);
  store_be32(buf_, pos_, iaid);
  store_be32(buf_, pos_ + 4, t1);
  store_be32(buf_, pos_ + 8, t2);
  pos_ += Dhcp6IaNa::kFixedLen;
}

void Dhcp6Writer::begin_ia_addr(const Ipv6Addr& addr, std::uint32_t preferred, std::uint32_t valid) noexcept {
  if (depth_ >= kMaxDepth || !reserve(kOptHeader + Dhcp6IaAddr::kFixedLen)) {
    ok_ = false;
    return;
  }
  open_[depth_++] = pos_;
  header(dhcp6_opt::kIaAddr, 0);
  std::memcpy(buf_.data() + pos_, addr.octets.data(), 16);
  store_be32(buf_, pos_ + 16, preferred);
  store_be32(buf_, pos_ + 20, valid);
  pos_ += Dhcp6IaAddr::kFixedLen;
}

void Dhcp6Writer::end() noexcept {
  if (depth_ == 0) {
    ok_ = false;
    return;
  }
  const std::size_t start = open_[--depth_];
  if (!ok_) return;
  const std::size_t len = pos_ - start - kOptHeader;
  if (len > 0xffff) {
    ok_ = false;
    return;
  }
  store_be16(buf_, start + 2, static_cast<std::uint16_t>(len));
}

std::size_t Dhcp6Writer::finish() noexcept { return ok_ && depth_ == 0 ? pos_ : 0; }

}  // namespace vnet::wire
