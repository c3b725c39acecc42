#include "wire/dhcp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace vnet::wire {
namespace {

const MacAddr kMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

// A BOOTREQUEST: fixed header, cookie, then the raw option bytes given.
std::vector<std::uint8_t> request(std::vector<std::uint8_t> options, std::uint8_t op = 1) {
  std::vector<std::uint8_t> b(DhcpPacket::kOptionsOffset + options.size(), 0);
  b[0] = op;
  b[1] = 1;
  b[2] = 6;
  store_be32(b, 4, 0xdeadbeef);
  store_be16(b, 8, 7);
  store_be16(b, 10, 0x8000);
  b[12] = 10, b[13] = 0, b[14] = 2, b[15] = 99;  // ciaddr
  std::memcpy(b.data() + DhcpPacket::kChaddrOffset, kMac.octets.data(), 6);
  store_be32(b, DhcpPacket::kCookieOffset, DhcpPacket::kMagicCookie);
  std::copy(options.begin(), options.end(), b.begin() + DhcpPacket::kOptionsOffset);
  return b;
}

TEST(WireDhcp, ParsesHeaderAndOptions) {
  auto b = request({53, 1, 3, 0, 0, 50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2, 61, 3, 1, 'a', 'b', 12, 3, 'v', 'm', '1',
                    55, 3, 1, 3, 6, 51, 4, 0, 0, 0x0e, 0x10, 255});
  auto p = DhcpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->op(), 1);
  EXPECT_TRUE(p->is_ethernet());
  EXPECT_EQ(p->xid(), 0xdeadbeefu);
  EXPECT_EQ(p->secs(), 7);
  EXPECT_TRUE(p->broadcast_flag());
  EXPECT_EQ(p->ciaddr(), (Ipv4Addr{{10, 0, 2, 99}}));
  EXPECT_EQ(p->client_mac(), kMac);
  EXPECT_EQ(p->message_type(), DhcpMessageType::Request);
  EXPECT_EQ(p->requested_ip(), (Ipv4Addr{{10, 0, 2, 15}}));
  EXPECT_EQ(p->server_id(), (Ipv4Addr{{10, 0, 2, 2}}));
  EXPECT_EQ(p->client_id().size(), 3u);
  EXPECT_EQ(std::string(p->hostname().begin(), p->hostname().end()), "vm1");
  EXPECT_EQ(p->param_request_list().size(), 3u);
  EXPECT_EQ(p->lease_time(), 3600u);
  EXPECT_EQ(p->overload(), 0);
  EXPECT_EQ(p->sname(), "");
}

TEST(WireDhcp, TruncatedBeforeCookie) {
  auto b = request({53, 1, 1, 255});
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, DhcpPacket::kFixedLen, DhcpPacket::kMinLen - 1}) {
    auto p = DhcpPacket::parse(std::span(b).first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), ParseError::Truncated);
  }
  EXPECT_TRUE(DhcpPacket::parse(std::span(b).first(DhcpPacket::kMinLen)));
}

TEST(WireDhcp, BadCookieIsUnsupported) {
  auto b = request({53, 1, 1, 255});
  b[DhcpPacket::kCookieOffset] = 0x99;
  auto p = DhcpPacket::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::Unsupported);
}

TEST(WireDhcp, HlenAbove16) {
  auto b = request({53, 1, 1, 255});
  b[2] = 17;
  auto p = DhcpPacket::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::BadLength);
  b[2] = 16;
  b[1] = 6;  // IEEE 802: parses, but is not Ethernet
  auto q = DhcpPacket::parse(b);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->is_ethernet());
  EXPECT_EQ(q->chaddr().size(), 16u);
}

TEST(WireDhcp, OptionLengthOverrun) {
  // Length byte claims 10, only 2 follow.
  const auto p_bytes = request({53, 1, 1, 12, 10, 'a', 'b'});  // the view borrows it
  auto p = DhcpPacket::parse(p_bytes);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::BadOption);
  // Code byte with no length byte at the very end.
  const auto q_bytes = request({53, 1, 1, 12});  // the view borrows it
  auto q = DhcpPacket::parse(q_bytes);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error(), ParseError::BadOption);
}

TEST(WireDhcp, MissingEndAndPaddingAreAccepted) {
  const auto p_bytes = request({0, 0, 53, 1, 1, 0});  // the view borrows it
  auto p = DhcpPacket::parse(p_bytes);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->message_type(), DhcpMessageType::Discover);
}

TEST(WireDhcp, BytesAfterEndAreIgnored) {
  // Garbage after End (padding in many clients) must not be walked.
  const auto p_bytes = request({53, 1, 1, 255, 12, 200});  // the view borrows it
  auto p = DhcpPacket::parse(p_bytes);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->hostname().empty());
}

TEST(WireDhcp, ZeroLengthOptions) {
  const auto p_bytes = request({53, 0, 50, 0, 12, 0, 80, 0, 255});  // the view borrows it
  auto p = DhcpPacket::parse(p_bytes);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->message_type());
  EXPECT_FALSE(p->requested_ip());
  EXPECT_TRUE(p->hostname().empty());
  ASSERT_TRUE(p->find(80));
  EXPECT_TRUE(p->find(80)->data.empty());
}

TEST(WireDhcp, WrongSizedValuesAreAbsent) {
  const auto p_bytes = request({53, 2, 1, 1, 50, 3, 10, 0, 2, 54, 5, 1, 2, 3, 4, 5, 51, 2, 0, 1, 255});  // the view borrows it
  auto p = DhcpPacket::parse(p_bytes);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->message_type());
  EXPECT_FALSE(p->requested_ip());
  EXPECT_FALSE(p->server_id());
  EXPECT_FALSE(p->lease_time());
  const auto q_bytes = request({53, 1, 9, 255});  // the view borrows it
  auto q = DhcpPacket::parse(q_bytes);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->message_type());
}

TEST(WireDhcp, OverloadedFileAndSnameCarryOptions) {
  auto b = request({52, 1, 3, 255});
  // file: message type; sname: hostname.
  const std::uint8_t file_opts[] = {53, 1, 1, 255};
  const std::uint8_t sname_opts[] = {12, 2, 'h', 'x', 255};
  std::memcpy(b.data() + DhcpPacket::kFileOffset, file_opts, sizeof(file_opts));
  std::memcpy(b.data() + DhcpPacket::kSnameOffset, sname_opts, sizeof(sname_opts));
  auto p = DhcpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->overload(), 3);
  EXPECT_EQ(p->message_type(), DhcpMessageType::Discover);
  EXPECT_EQ(p->hostname().size(), 2u);
  // The fields are options, not strings.
  EXPECT_EQ(p->file(), "");
  EXPECT_EQ(p->sname(), "");
}

TEST(WireDhcp, OverloadOnlyFileLeavesSnameText) {
  auto b = request({52, 1, 1, 53, 1, 1, 255});
  std::memcpy(b.data() + DhcpPacket::kSnameOffset, "server", 6);
  auto p = DhcpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sname(), "server");
  EXPECT_EQ(p->file(), "");
  EXPECT_EQ(p->message_type(), DhcpMessageType::Discover);
}

TEST(WireDhcp, OverloadWithBadValueOrBadAreaIsRejected) {
  for (std::vector<std::uint8_t> opts : {std::vector<std::uint8_t>{52, 1, 0, 255}, {52, 1, 4, 255}, {52, 2, 1, 1, 255}}) {
    const auto p_bytes = request(opts);  // the view borrows it
    auto p = DhcpPacket::parse(p_bytes);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::BadOption);
  }
  // The file area says "128 bytes of hostname follow": past its 128 bytes.
  auto b = request({52, 1, 1, 53, 1, 1, 255});
  b[DhcpPacket::kFileOffset + 126] = 12;
  b[DhcpPacket::kFileOffset + 127] = 100;
  std::memset(b.data() + DhcpPacket::kFileOffset, 0, 126);  // pads up to the bad option
  auto p = DhcpPacket::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::BadOption);
}

TEST(WireDhcp, OverloadOutsideOptionsFieldIsIgnored) {
  // Option 52 inside an overloaded area does not chain further (RFC 2132 9.3).
  auto b = request({52, 1, 1, 255});
  const std::uint8_t file_opts[] = {52, 1, 2, 53, 1, 3, 255};
  std::memcpy(b.data() + DhcpPacket::kFileOffset, file_opts, sizeof(file_opts));
  std::memcpy(b.data() + DhcpPacket::kSnameOffset, "\x0c\xff", 2);  // would overrun if walked
  auto p = DhcpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->overload(), 1);
  EXPECT_EQ(p->message_type(), DhcpMessageType::Request);
}

TEST(WireDhcp, WriterRoundTrip) {
  std::vector<std::uint8_t> buf(548, 0xaa);
  DhcpReplyHeader h;
  h.xid = 42;
  h.flags = DhcpPacket::kBroadcastFlag;
  h.yiaddr = Ipv4Addr{{10, 0, 2, 15}};
  h.siaddr = Ipv4Addr{{10, 0, 2, 2}};
  std::copy(kMac.octets.begin(), kMac.octets.end(), h.chaddr.begin());
  h.file = "pxelinux.0";
  DhcpWriter w(buf, h);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w.option_u8(dhcp_opt::kMessageType, 5));
  EXPECT_TRUE(w.option_addr(dhcp_opt::kServerId, Ipv4Addr{{10, 0, 2, 2}}));
  EXPECT_TRUE(w.option_u32(dhcp_opt::kLeaseTime, 86400));
  EXPECT_TRUE(w.option_u16(dhcp_opt::kInterfaceMtu, 65520));
  const std::size_t n = w.finish();
  EXPECT_EQ(n, DhcpWriter::kMinReplyLen);
  auto p = DhcpPacket::parse(std::span(buf).first(n));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->op(), DhcpPacket::kBootReply);
  EXPECT_EQ(p->xid(), 42u);
  EXPECT_TRUE(p->broadcast_flag());
  EXPECT_EQ(p->yiaddr(), h.yiaddr);
  EXPECT_EQ(p->siaddr(), h.siaddr);
  EXPECT_EQ(p->client_mac(), kMac);
  EXPECT_EQ(p->file(), "pxelinux.0");
  EXPECT_EQ(p->message_type(), DhcpMessageType::Ack);
  EXPECT_EQ(p->server_id(), h.siaddr);
  EXPECT_EQ(p->lease_time(), 86400u);
  ASSERT_TRUE(p->find(dhcp_opt::kInterfaceMtu));
  EXPECT_EQ(load_be16(p->find(dhcp_opt::kInterfaceMtu)->data, 0), 65520);
  // Padding is zero, not left-over buffer content.
  EXPECT_EQ(buf[n - 1], 0);
}

TEST(WireDhcp, WriterRefusesWhatDoesNotFitAndStaysValid) {
  std::vector<std::uint8_t> buf(DhcpWriter::kMinReplyLen);
  DhcpWriter w(buf, DhcpReplyHeader{});
  ASSERT_TRUE(w.ok());
  const std::uint8_t big[255] = {};
  EXPECT_FALSE(w.option(12, Bytes(big, 255)));
  EXPECT_TRUE(w.option_u8(dhcp_opt::kMessageType, 2));
  EXPECT_FALSE(w.option(12, Bytes(big, 60)));  // 2 + 60 + End > the 57 bytes left
  EXPECT_TRUE(w.option(12, Bytes(big, 50)));
  const std::size_t n = w.finish();
  EXPECT_EQ(n, buf.size());
  auto p = DhcpPacket::parse(buf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->message_type(), DhcpMessageType::Offer);
  EXPECT_EQ(p->hostname().size(), 50u);
}

TEST(WireDhcp, WriterNeedsRoomForMinimumReply) {
  std::vector<std::uint8_t> buf(299);
  DhcpWriter w(buf, DhcpReplyHeader{});
  EXPECT_FALSE(w.ok());
  EXPECT_FALSE(w.option_u8(53, 2));
  EXPECT_EQ(w.finish(), 0u);
}

TEST(WireDhcp, EncodesSearchDomain) {
  std::uint8_t out[256];
  const std::size_t n = dhcp_encode_domain("example.com", out);
  const std::uint8_t want[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  ASSERT_EQ(n, sizeof(want));
  EXPECT_EQ(std::memcmp(out, want, n), 0);
  EXPECT_EQ(dhcp_encode_domain("lan.", out), 5u);
  EXPECT_EQ(dhcp_encode_domain("", out), 0u);
  EXPECT_EQ(dhcp_encode_domain("a..b", out), 0u);
  EXPECT_EQ(dhcp_encode_domain(std::string(64, 'x') + ".com", out), 0u);
  EXPECT_EQ(dhcp_encode_domain("example.com", std::span(out, 5)), 0u);
}

}  // namespace
}  // namespace vnet::wire
