#include "wire/tcp.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

const IpAddr kSrc = Ipv4Addr{{10, 0, 2, 15}};
const IpAddr kDst = Ipv4Addr{{93, 184, 216, 34}};

std::vector<std::uint8_t> syn_bytes() {
  auto b = Bytes(samples::kTcpSynPacket).subspan(Ipv4Packet::kMinHeaderLen);
  return {b.begin(), b.end()};
}

ParseError options_error(std::vector<std::uint8_t> opts) {
  auto o = TcpOptions::parse(opts);
  EXPECT_FALSE(o);
  return o ? ParseError::Unsupported : o.error();
}

TEST(WireTcp, ParsesKnownSyn) {
  auto ip = Ipv4Packet::parse(samples::kTcpSynPacket);
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->verify_checksum());
  auto t = TcpPacket::parse(ip->payload());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->src_port(), 45678);
  EXPECT_EQ(t->dst_port(), 80);
  EXPECT_EQ(t->seq_number(), 0x12345678u);
  EXPECT_EQ(t->ack_number(), 0u);
  EXPECT_EQ(t->header_len(), 40u);
  EXPECT_TRUE(t->syn());
  EXPECT_FALSE(t->ack() || t->fin() || t->rst() || t->psh() || t->urg() || t->ece() || t->cwr());
  EXPECT_EQ(t->window(), 64240);
  EXPECT_EQ(t->checksum(), 0x0d79);
  EXPECT_EQ(t->urgent_ptr(), 0);
  EXPECT_TRUE(t->verify_checksum(ip->src(), ip->dst()));
  EXPECT_TRUE(t->payload().empty());
  EXPECT_EQ(t->segment_len(), 1u);

  auto o = t->parse_options();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->mss, 1460);
  EXPECT_TRUE(o->sack_permitted);
  ASSERT_TRUE(o->timestamps);
  EXPECT_EQ(o->timestamps->tsval, 123456u);
  EXPECT_EQ(o->timestamps->tsecr, 0u);
  EXPECT_EQ(o->window_scale, 7);
  EXPECT_EQ(o->sack_count, 0);
}

TEST(WireTcp, RoundTripWithOptionsAndPayload) {
  TcpRepr r;
  r.src_port = 443;
  r.dst_port = 51000;
  r.seq = 0xfffffff0;
  r.ack = 42;
  r.flags = TcpFlag::Syn | TcpFlag::Ack;
  r.window = 29200;
  r.options.mss = 1400;
  r.options.window_scale = 9;
  r.options.sack_permitted = true;
  r.payload_len = 5;
  std::vector<std::uint8_t> buf(r.buffer_len());
  const std::size_t hdr = r.header_len();
  EXPECT_EQ(hdr % 4, 0u);
  std::memcpy(buf.data() + hdr, "abcde", 5);
  ASSERT_EQ(r.emit(buf, kSrc, kDst), hdr);

  auto t = TcpPacket::parse(buf);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->verify_checksum(kSrc, kDst));
  auto back = TcpRepr::parse(*t, kSrc, kDst);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

TEST(WireTcp, RoundTripAllOptionsV6) {
  const IpAddr src = *Ipv6Addr::parse("fd00::2"), dst = *Ipv6Addr::parse("fd00::1");
  TcpRepr r;
  r.flags = TcpFlag::Ack;
  r.options.timestamps = TcpTimestamps{1, 2};
  r.options.sack_permitted = true;
  r.options.sack_count = 2;
  r.options.sack[0] = {100, 200};
  r.options.sack[1] = {300, 400};
  std::vector<std::uint8_t> buf(r.buffer_len());
  ASSERT_EQ(r.emit(buf, src, dst), 20u + 12 + 20);
  auto back = TcpRepr::parse(*TcpPacket::parse(buf), src, dst);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

TEST(WireTcp, EmitRejectsOversizeOptionsAndShortBuffer) {
  TcpRepr r;
  r.options.mss = 1;
  r.options.window_scale = 1;
  r.options.timestamps = TcpTimestamps{};
  r.options.sack_count = 3;  // 4 + 4 + 12 + 28 = 48 > 40
  std::vector<std::uint8_t> buf(100);
  EXPECT_EQ(r.emit(buf, kSrc, kDst), 0u);
  TcpRepr small;
  small.payload_len = 10;
  std::vector<std::uint8_t> short_buf(25);
  EXPECT_EQ(small.emit(short_buf, kSrc, kDst), 0u);
}

TEST(WireTcp, TruncatedBelowMinimum) {
  auto b = syn_bytes();
  for (std::size_t n = 0; n < TcpPacket::kMinHeaderLen; ++n) {
    auto t = TcpPacket::parse(Bytes(b).first(n));
    ASSERT_FALSE(t) << n;
    EXPECT_EQ(t.error(), ParseError::Truncated) << n;
  }
}

TEST(WireTcp, DataOffsetBelowFive) {
  auto b = syn_bytes();
  for (std::uint8_t off = 0; off < 5; ++off) {
    b[12] = static_cast<std::uint8_t>(off << 4);
    EXPECT_EQ(TcpPacket::parse(b).error(), ParseError::BadHeaderLength) << int{off};
  }
}

TEST(WireTcp, DataOffsetBeyondBuffer) {
  auto b = syn_bytes();
  b[12] = 0xb0;  // 44-byte header in a 40-byte segment
  EXPECT_EQ(TcpPacket::parse(b).error(), ParseError::Truncated);
}

TEST(WireTcp, BadChecksumDetected) {
  auto b = syn_bytes();
  b[4] ^= 1;
  auto t = TcpPacket::parse(b);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->verify_checksum(kSrc, kDst));
  EXPECT_EQ(TcpRepr::parse(*t, kSrc, kDst).error(), ParseError::BadChecksum);
  EXPECT_TRUE(TcpRepr::parse(*t, kSrc, kDst, /*verify_checksum=*/false));
}

TEST(WireTcp, ReprRejectsMalformedOptions) {
  auto b = syn_bytes();
  b[21] = 0;  // MSS option length 0
  auto t = *TcpPacketMut::parse(b);
  t.fill_checksum(kSrc, kDst);
  EXPECT_EQ(TcpRepr::parse(t, kSrc, kDst).error(), ParseError::BadOption);
}

TEST(WireTcpOptions, EmptyAndPadding) {
  EXPECT_TRUE(TcpOptions::parse({}));
  auto o = TcpOptions::parse(std::vector<std::uint8_t>{1, 1, 1, 0, 0xff, 0xff});
  ASSERT_TRUE(o);  // bytes after End are padding, never parsed
  EXPECT_FALSE(o->mss);
}

TEST(WireTcpOptions, UnknownOptionSkipped) {
  auto o = TcpOptions::parse(std::vector<std::uint8_t>{30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0xb4});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->mss, 1460);
}

TEST(WireTcpOptions, WindowScaleClampedTo14) {
  auto o = TcpOptions::parse(std::vector<std::uint8_t>{3, 3, 200, 0});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->window_scale, 14);
}

TEST(WireTcpOptions, SackBlocks) {
  std::vector<std::uint8_t> opts = {1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
  auto o = TcpOptions::parse(opts);
  ASSERT_TRUE(o);
  ASSERT_EQ(o->sack_count, 2);
  EXPECT_EQ(o->sack[0], (TcpSackBlock{1, 2}));
  EXPECT_EQ(o->sack[1], (TcpSackBlock{3, 4}));
}

TEST(WireTcpOptions, RepeatedSackReplacesEarlierBlocks) {
  // Found by fuzz_tcp_options: stale blocks from a longer first SACK leaked.
  std::vector<std::uint8_t> opts = {5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
                                    5, 10, 0, 0, 0, 9, 0, 0, 0, 10};
  auto o = TcpOptions::parse(opts);
  ASSERT_TRUE(o);
  ASSERT_EQ(o->sack_count, 1);
  EXPECT_EQ(o->sack[0], (TcpSackBlock{9, 10}));
  EXPECT_EQ(o->sack[1], TcpSackBlock{});
}

TEST(WireTcpOptions, LengthZero) { EXPECT_EQ(options_error({2, 0, 5, 0xb4}), ParseError::BadOption); }

TEST(WireTcpOptions, LengthOne) { EXPECT_EQ(options_error({2, 1, 5, 0xb4}), ParseError::BadOption); }

TEST(WireTcpOptions, LengthOverrunsList) { EXPECT_EQ(options_error({1, 2, 5, 0xb4}), ParseError::BadOption); }

TEST(WireTcpOptions, KindWithoutLengthByte) { EXPECT_EQ(options_error({1, 1, 1, 8}), ParseError::BadOption); }

TEST(WireTcpOptions, UnknownOptionOverruns) { EXPECT_EQ(options_error({99, 40, 0, 0}), ParseError::BadOption); }

TEST(WireTcpOptions, MssWrongLength) { EXPECT_EQ(options_error({2, 3, 5, 0}), ParseError::BadOption); }

TEST(WireTcpOptions, WindowScaleWrongLength) { EXPECT_EQ(options_error({3, 4, 7, 0}), ParseError::BadOption); }

TEST(WireTcpOptions, SackPermittedWrongLength) { EXPECT_EQ(options_error({4, 3, 0, 0}), ParseError::BadOption); }

TEST(WireTcpOptions, TimestampsWrongLength) {
  EXPECT_EQ(options_error({8, 6, 0, 0, 0, 0, 0, 0}), ParseError::BadOption);
}

TEST(WireTcpOptions, SackBadBlockLength) {
  EXPECT_EQ(options_error({5, 6, 0, 0, 0, 0, 0, 0}), ParseError::BadOption);
  EXPECT_EQ(options_error({5, 2, 1, 1}), ParseError::BadOption);
}

TEST(WireTcpOptions, ReaderTerminatesOnEveryByteString) {
  // Exhaustive over short lists: each either parses or errors, never hangs.
  std::mt19937 rng(9293);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> opts(rng() % 41);
    for (auto& b : opts) b = static_cast<std::uint8_t>(rng() % 12);
    TcpOptionReader r(opts);
    std::size_t steps = 0;
    while (r.next()) ASSERT_LE(++steps, opts.size());
  }
}

TEST(WireTcp, NatRewriteKeepsChecksumValid) {
  std::mt19937 rng(1624);
  for (int i = 0; i < 50; ++i) {
    auto b = syn_bytes();
    auto t = *TcpPacketMut::parse(b);
    const IpAddr new_dst = Ipv4Addr::from_u32(static_cast<std::uint32_t>(rng()));
    t.set_src_port(static_cast<std::uint16_t>(rng()));
    t.set_dst_port(static_cast<std::uint16_t>(rng()));
    t.adjust_for_address_change(kDst, new_dst);
    ASSERT_TRUE(t.verify_checksum(kSrc, new_dst)) << i;
    const std::uint16_t incremental = t.checksum();
    t.fill_checksum(kSrc, new_dst);
    EXPECT_EQ(t.checksum(), incremental) << i;
  }
}

TEST(WireTcp, ClampMssAtEvenAndOddOffsets) {
  // A NOP before MSS puts its value at an odd offset, where the incremental
  // checksum update has to account for the byte swap.
  const std::vector<std::vector<std::uint8_t>> option_lists = {
      {2, 4, 0x05, 0xb4},
      {1, 2, 4, 0x05, 0xb4, 0, 0, 0},
  };
  for (const auto& opts : option_lists) {
    TcpRepr r;
    r.flags = TcpFlag::Syn;
    std::vector<std::uint8_t> buf(TcpPacket::kMinHeaderLen);
    ASSERT_NE(r.emit(buf, kSrc, kDst), 0u);
    buf.insert(buf.end(), opts.begin(), opts.end());
    buf[12] = static_cast<std::uint8_t>((buf.size() / 4) << 4);
    auto t = *TcpPacketMut::parse(buf);
    t.fill_checksum(kSrc, kDst);
    ASSERT_EQ(t.parse_options()->mss, 1460);
    EXPECT_TRUE(t.clamp_mss(1360));
    EXPECT_EQ(t.parse_options()->mss, 1360) << opts.size();
    EXPECT_TRUE(t.verify_checksum(kSrc, kDst)) << opts.size();
    EXPECT_FALSE(t.clamp_mss(1400));
  }
}

}  // namespace
}  // namespace vnet::wire
