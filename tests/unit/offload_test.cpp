// Resolving TAP offloads: TSO segments cut into MTU-sized frames and partial
// checksums completed, checked with the wire views' own checksum checks.
#include "fabric/offload.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace vnet {
namespace {

using namespace vnet::wire;

const Ipv4Addr kSrc{{10, 0, 0, 1}}, kDst{{10, 0, 0, 2}};

// An Ethernet/IPv4/TCP frame with `payload` bytes, TCP checksum left as a
// partial (pseudo-header) sum, as the kernel hands it over with offloads.
std::vector<std::uint8_t> tso_frame(std::size_t payload, std::uint8_t flags) {
  std::vector<std::uint8_t> f(14 + 20 + 20 + payload);
  EthernetRepr{MacAddr{{2, 0, 0, 0, 0, 2}}, MacAddr{{2, 0, 0, 0, 0, 1}}, EtherType::Ipv4, std::nullopt}.emit(f);
  Ipv4Repr ip;
  ip.src = kSrc;
  ip.dst = kDst;
  ip.protocol = IpProtocol::Tcp;
  ip.payload_len = static_cast<std::uint16_t>(20 + payload);
  ip.ident = 100;
  ip.emit(MutBytes(f).subspan(14));
  MutBytes tcp = MutBytes(f).subspan(34);
  store_be16(tcp, 0, 40000);
  store_be16(tcp, 2, 5201);
  store_be32(tcp, 4, 1000);
  store_be32(tcp, 8, 7);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  store_be16(tcp, 14, 512);
  for (std::size_t i = 0; i < payload; ++i) tcp[20 + i] = static_cast<std::uint8_t>(i);
  store_be16(tcp, 16, checksum_fold(pseudo_header_v4(kSrc, kDst, 6, static_cast<std::uint16_t>(20 + payload))));
  return f;
}

Offload tso(std::uint16_t mss) {
  Offload o;
  o.flags = Offload::kNeedsCsum;
  o.gso_type = Offload::kGsoTcpV4;
  o.hdr_len = 54;
  o.gso_size = mss;
  o.csum_start = 34;
  o.csum_offset = 16;
  return o;
}

struct Collected {
  std::vector<std::vector<std::uint8_t>> frames;
  std::function<void(Bytes)> sink() {
    return [this](Bytes f) { frames.emplace_back(f.begin(), f.end()); };
  }
};

TEST(Offload, HeaderRoundTrip) {
  Offload o = tso(1448);
  std::uint8_t h[Offload::kHeaderLen];
  o.emit(h);
  Offload back = Offload::parse(h);
  EXPECT_EQ(back.gso_size, 1448);
  EXPECT_EQ(back.csum_start, 34);
  EXPECT_TRUE(back.is_gso());
  EXPECT_TRUE(back.pending());
  EXPECT_FALSE(Offload{}.pending());
}

TEST(Offload, TsoSegmentIsCutIntoValidFrames) {
  auto frame = tso_frame(3000, TcpFlag::Ack | TcpFlag::Psh | TcpFlag::Fin);
  std::vector<std::uint8_t> scratch(70000);
  Collected out;
  ASSERT_TRUE(resolve_offload(frame, tso(1000), scratch, out.sink()));
  ASSERT_EQ(out.frames.size(), 3u);
  std::uint32_t expected_seq = 1000;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& f = out.frames[i];
    ASSERT_EQ(f.size(), 14u + 20 + 20 + 1000);
    auto ip = Ipv4Packet::parse(Bytes(f).subspan(14));
    ASSERT_TRUE(ip);
    EXPECT_TRUE(ip->verify_checksum());
    EXPECT_EQ(ip->total_len(), 1040);
    EXPECT_EQ(ip->ident(), 100 + i);
    auto tcp = TcpPacket::parse(ip->payload());
    ASSERT_TRUE(tcp);
    EXPECT_TRUE(tcp->verify_checksum(IpAddr(kSrc), IpAddr(kDst)));
    EXPECT_EQ(tcp->seq_number(), expected_seq);
    EXPECT_EQ(tcp->fin(), i == 2) << "FIN only on the last segment";
    EXPECT_EQ(tcp->payload()[0], static_cast<std::uint8_t>(i * 1000));
    expected_seq += 1000;
  }
}

TEST(Offload, ShortLastSegment) {
  auto frame = tso_frame(2500, TcpFlag::Ack);
  std::vector<std::uint8_t> scratch(70000);
  Collected out;
  ASSERT_TRUE(resolve_offload(frame, tso(1000), scratch, out.sink()));
  ASSERT_EQ(out.frames.size(), 3u);
  EXPECT_EQ(out.frames[2].size(), 14u + 40 + 500);
}

TEST(Offload, PartialChecksumIsCompleted) {
  auto frame = tso_frame(300, TcpFlag::Ack);
  Offload o;
  o.flags = Offload::kNeedsCsum;
  o.csum_start = 34;
  o.csum_offset = 16;
  std::vector<std::uint8_t> scratch(70000);
  Collected out;
  ASSERT_TRUE(resolve_offload(frame, o, scratch, out.sink()));
  ASSERT_EQ(out.frames.size(), 1u);
  auto ip = Ipv4Packet::parse(Bytes(out.frames[0]).subspan(14));
  auto tcp = TcpPacket::parse(ip->payload());
  EXPECT_TRUE(tcp->verify_checksum(IpAddr(kSrc), IpAddr(kDst)));
}

TEST(Offload, RejectsWhatItCannotResolve) {
  std::vector<std::uint8_t> scratch(70000);
  Collected out;
  auto frame = tso_frame(100, TcpFlag::Ack);
  Offload udp = tso(1000);
  udp.gso_type = Offload::kGsoUdp;
  EXPECT_FALSE(resolve_offload(frame, udp, scratch, out.sink())) << "UDP fragmentation offload is not enabled";
  Offload bad = tso(0);
  EXPECT_FALSE(resolve_offload(frame, bad, scratch, out.sink())) << "gso_size 0";
  Offload beyond;
  beyond.flags = Offload::kNeedsCsum;
  beyond.csum_start = 5000;
  EXPECT_FALSE(resolve_offload(frame, beyond, scratch, out.sink())) << "checksum start past the frame";
  std::vector<std::uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_FALSE(resolve_offload(arp, tso(1000), scratch, out.sink())) << "TSO on a frame that is not TCP";
  EXPECT_TRUE(out.frames.empty());
}

}  // namespace
}  // namespace vnet
