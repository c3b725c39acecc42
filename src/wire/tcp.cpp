#include "wire/tcp.hpp"

#include <algorithm>

#include "wire/checksum.hpp"
#include "wire/ip_protocol.hpp"

namespace vnet::wire {

namespace {

constexpr auto kProto = static_cast<std::uint8_t>(IpProtocol::Tcp);
constexpr std::size_t kMaxOptionsLen = TcpPacket::kMaxHeaderLen - TcpPacket::kMinHeaderLen;

constexpr std::size_t kMssLen = 4;
constexpr std::size_t kWsLen = 4;       // NOP + 3
constexpr std::size_t kSackPermLen = 4;  // NOP NOP + 2, or shared with timestamps
constexpr std::size_t kTsLen = 12;      // NOP NOP + 10 (or SACK-permitted + 10)

std::size_t sack_blocks(const TcpOptions& o) {
  return std::min<std::size_t>(o.sack_count, TcpOptions::kMaxSackBlocks);
}

bool apply_option(TcpOptions& out, const TcpOption& o) {
  const Bytes d = o.data;
  switch (o.kind) {
    case TcpOptionKind::Mss:
      if (d.size() != 2) return false;
      out.mss = load_be16(d, 0);
      return true;
    case TcpOptionKind::WindowScale:
      if (d.size() != 1) return false;
      out.window_scale = std::min(d[0], TcpOptions::kMaxWindowScale);
      return true;
    case TcpOptionKind::SackPermitted:
      if (!d.empty()) return false;
      out.sack_permitted = true;
      return true;
    case TcpOptionKind::Sack: {
      const std::size_t n = d.size() / 8;
      if (d.size() % 8 != 0 || n == 0 || n > TcpOptions::kMaxSackBlocks) return false;
      out.sack = {};  // a repeated SACK option replaces, not merges with, the earlier one
      for (std::size_t i = 0; i < n; ++i) {
        out.sack[i] = {load_be32(d, i * 8), load_be32(d, i * 8 + 4)};
      }
      out.sack_count = static_cast<std::uint8_t>(n);
      return true;
    }
    case TcpOptionKind::Timestamps:
      if (d.size() != 8) return false;
      out.timestamps = TcpTimestamps{load_be32(d, 0), load_be32(d, 4)};
      return true;
    default:
      return true;  // unknown options are legal and ignored (RFC 9293 3.2)
  }
}

// A 16-bit field at an odd offset straddles two checksum words, which
// amounts to adding its byte-swapped value.
std::uint16_t update_at(std::uint16_t checksum, std::size_t off, std::uint16_t old_v, std::uint16_t new_v) {
  if (off % 2 != 0) {
    old_v = static_cast<std::uint16_t>((old_v << 8) | (old_v >> 8));
    new_v = static_cast<std::uint16_t>((new_v << 8) | (new_v >> 8));
  }
  return checksum_update16(checksum, old_v, new_v);
}

std::uint16_t compute(Bytes segment, const IpAddr& src, const IpAddr& dst) {
  return internet_checksum(segment, pseudo_header(src, dst, kProto, static_cast<std::uint32_t>(segment.size())));
}

}  // namespace

std::optional<TcpOption> TcpOptionReader::next() noexcept {
  while (!rest_.empty()) {
    const std::uint8_t kind = rest_[0];
    if (kind == TcpOptionKind::End) break;
    if (kind == TcpOptionKind::Nop) {
      rest_ = rest_.subspan(1);
      continue;
    }
    // A length below 2 would not advance past its own TLV header.
    if (rest_.size() < 2 || rest_[1] < 2 || rest_[1] > rest_.size()) {
      error_ = ParseError::BadOption;
      break;
    }
    const std::size_t len = rest_[1];
    TcpOption o{kind, rest_.subspan(2, len - 2)};
    rest_ = rest_.subspan(len);
    return o;
  }
  rest_ = {};
  return std::nullopt;
}

Parsed<TcpOptions> TcpOptions::parse(Bytes options) noexcept {
  TcpOptions out;
  TcpOptionReader reader(options);
  while (auto o = reader.next()) {
    if (!apply_option(out, *o)) return ParseError::BadOption;
  }
  if (auto e = reader.error()) return *e;
  return out;
}

std::size_t TcpOptions::emit_len() const noexcept {
  std::size_t n = 0;
  if (mss) n += kMssLen;
  if (window_scale) n += kWsLen;
  if (timestamps) {
    n += kTsLen;
  } else if (sack_permitted) {
    n += kSackPermLen;
  }
  if (sack_blocks(*this) > 0) n += 4 + 8 * sack_blocks(*this);
  return n;
}

std::size_t TcpOptions::emit(MutBytes buf) const noexcept {
  const std::size_t total = emit_len();
  if (buf.size() < total) return 0;
  std::size_t at = 0;
  auto put = [&](std::uint8_t b) { buf[at++] = b; };
  if (mss) {
    put(TcpOptionKind::Mss);
    put(4);
    store_be16(buf, at, *mss);
    at += 2;
  }
  if (window_scale) {
    put(TcpOptionKind::Nop);
    put(TcpOptionKind::WindowScale);
    put(3);
    put(*window_scale);
  }
  if (timestamps) {
    // SACK-permitted fills the two bytes timestamps would otherwise pad.
    if (sack_permitted) {
      put(TcpOptionKind::SackPermitted);
      put(2);
    } else {
      put(TcpOptionKind::Nop);
      put(TcpOptionKind::Nop);
    }
    put(TcpOptionKind::Timestamps);
    put(10);
    store_be32(buf, at, timestamps->tsval);
    store_be32(buf, at + 4, timestamps->tsecr);
    at += 8;
  } else if (sack_permitted) {
    put(TcpOptionKind::Nop);
    put(TcpOptionKind::Nop);
    put(TcpOptionKind::SackPermitted);
    put(2);
  }
  if (const std::size_t n = sack_blocks(*this); n > 0) {
    put(TcpOptionKind::Nop);
    put(TcpOptionKind::Nop);
    put(TcpOptionKind::Sack);
    put(static_cast<std::uint8_t>(2 + 8 * n));
    for (std::size_t i = 0; i < n; ++i) {
      store_be32(buf, at, sack[i].left);
      store_be32(buf, at + 4, sack[i].right);
      at += 8;
    }
  }
  return at;
}

Parsed<TcpPacket> TcpPacket::parse(Bytes b) noexcept {
  if (b.size() < kMinHeaderLen) return ParseError::Truncated;
  TcpPacket p(b);
  if (p.header_len() < kMinHeaderLen) return ParseError::BadHeaderLength;
  if (p.header_len() > b.size()) return ParseError::Truncated;
  return p;
}

bool TcpPacket::verify_checksum(const IpAddr& src, const IpAddr& dst) const {
  return checksum_ok(buf_, pseudo_header(src, dst, kProto, static_cast<std::uint32_t>(buf_.size())));
}

Parsed<TcpPacketMut> TcpPacketMut::parse(MutBytes b) noexcept {
  auto ro = TcpPacket::parse(b);
  if (!ro) return ro.error();
  return TcpPacketMut(b);
}

void TcpPacketMut::set_port(std::size_t off, std::uint16_t p) {
  const std::uint16_t old_p = load_be16(buf_, off);
  store_be16(mut(), off, p);
  set_checksum(checksum_update16(checksum(), old_p, p));
}

void TcpPacketMut::set_src_port(std::uint16_t p) { set_port(0, p); }

void TcpPacketMut::set_dst_port(std::uint16_t p) { set_port(2, p); }

void TcpPacketMut::adjust_for_address_change(const IpAddr& old_addr, const IpAddr& new_addr) {
  // IPv4-mapped forms share their first 12 bytes, so diffing all 16 bytes
  // gives exactly the IPv4 delta.
  set_checksum(checksum_update(checksum(), old_addr.bytes(), new_addr.bytes()));
}

bool TcpPacketMut::clamp_mss(std::uint16_t max_mss) {
  TcpOptionReader reader(options());
  while (auto o = reader.next()) {
    if (o->kind != TcpOptionKind::Mss || o->data.size() != 2) continue;
    const std::uint16_t old_mss = load_be16(o->data, 0);
    if (old_mss <= max_mss) return false;
    const auto off = static_cast<std::size_t>(o->data.data() - buf_.data());
    store_be16(mut(), off, max_mss);
    set_checksum(update_at(checksum(), off, old_mss, max_mss));
    return true;
  }
  return false;
}

void TcpPacketMut::fill_checksum(const IpAddr& src, const IpAddr& dst) {
  set_checksum(0);
  set_checksum(compute(buf_, src, dst));
}

Parsed<TcpRepr> TcpRepr::parse(const TcpPacket& p, const IpAddr& src, const IpAddr& dst,
                               bool verify_checksum) noexcept {
  if (verify_checksum && !p.verify_checksum(src, dst)) return ParseError::BadChecksum;
  auto opts = p.parse_options();
  if (!opts) return opts.error();
  if (p.payload().size() > 0xffff) return ParseError::BadLength;
  return TcpRepr{p.src_port(),  p.dst_port(), p.seq_number(), p.ack_number(),
                 p.flags(),     p.window(),   p.urgent_ptr(), *opts,
                 static_cast<std::uint16_t>(p.payload().size())};
}

std::size_t TcpRepr::emit(MutBytes buf, const IpAddr& src, const IpAddr& dst) const noexcept {
  const std::size_t opt_len = options.emit_len();
  const std::size_t hdr_len = TcpPacket::kMinHeaderLen + opt_len;
  const std::size_t total = hdr_len + payload_len;
  if (opt_len > kMaxOptionsLen || buf.size() < total) return 0;
  store_be16(buf, 0, src_port);
  store_be16(buf, 2, dst_port);
  store_be32(buf, 4, seq);
  store_be32(buf, 8, ack);
  buf[12] = static_cast<std::uint8_t>((hdr_len / 4) << 4);
  buf[13] = flags;
  store_be16(buf, 14, window);
  store_be16(buf, 16, 0);
  store_be16(buf, 18, urgent_ptr);
  options.emit(buf.subspan(TcpPacket::kMinHeaderLen, opt_len));
  store_be16(buf, 16, compute(buf.first(total), src, dst));
  return hdr_len;
}

}  // namespace vnet::wire
