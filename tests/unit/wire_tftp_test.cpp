// TFTP wire views: requests with options, DATA/ACK/ERROR/OACK, and one test
// per malformed case.
#include "wire/tftp.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vnet::wire {
namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> head, const std::string& tail = {}) {
  std::vector<std::uint8_t> v;
  for (int b : head) v.push_back(static_cast<std::uint8_t>(b));
  v.insert(v.end(), tail.begin(), tail.end());
  return v;
}

Parsed<TftpRequest> request(const std::vector<std::uint8_t>& v) {
  auto p = TftpPacket::parse(v);
  if (!p) return p.error();
  return TftpRequest::parse(*p);
}

TEST(WireTftp, RrqWithOptions) {
  auto v = bytes({0, 1}, std::string("boot/pxelinux.0\0octet\0blksize\0001428\0tsize\0000\0", 43));
  auto r = request(v);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->opcode, TftpOpcode::Rrq);
  EXPECT_EQ(r->filename, "boot/pxelinux.0");
  EXPECT_EQ(r->mode, "octet");
  ASSERT_EQ(r->option_count, 2u);
  ASSERT_NE(r->find("BLKSIZE"), nullptr);
  EXPECT_EQ(r->find("blksize")->value, "1428");
  EXPECT_EQ(r->find("tsize")->value, "0");
  EXPECT_EQ(r->find("timeout"), nullptr);
}

TEST(WireTftp, RequestRoundTrip) {
  std::uint8_t buf[128];
  TftpOption opts[] = {{"blksize", "1024"}, {"timeout", "3"}};
  std::size_t n = tftp_emit_request(buf, TftpOpcode::Wrq, "a.bin", "netascii", opts, 2);
  ASSERT_GT(n, 0u);
  const std::vector<std::uint8_t> v(buf, buf + n);  // the views point into it
  auto r = request(v);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->opcode, TftpOpcode::Wrq);
  EXPECT_EQ(r->filename, "a.bin");
  EXPECT_EQ(r->mode, "netascii");
  EXPECT_EQ(r->option_count, 2u);
  EXPECT_TRUE(tftp_iequals(r->mode, "NetAscii"));
}

TEST(WireTftp, TrailingNulPaddingTolerated) {
  auto r = request(bytes({0, 1}, std::string("f\0octet\0\0\0", 10)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option_count, 0u);
}

TEST(WireTftp, ExtraOptionsBeyondLimitSkipped) {
  std::string s("f\0octet\0", 8);
  for (int i = 0; i < 20; ++i) s += "o" + std::to_string(i) + std::string("\0v\0", 3);
  auto r = request(bytes({0, 1}, s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option_count, TftpRequest::kMaxOptions);
}

TEST(WireTftp, DataAckError) {
  auto d = bytes({0, 3, 0x12, 0x34, 'x', 'y'});
  auto p = TftpPacket::parse(d);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->opcode(), TftpOpcode::Data);
  EXPECT_EQ(p->block(), 0x1234);
  EXPECT_EQ(p->data().size(), 2u);

  auto a = bytes({0, 4, 0xff, 0xff});
  p = TftpPacket::parse(a);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->opcode(), TftpOpcode::Ack);
  EXPECT_EQ(p->block(), 0xffff);

  std::uint8_t buf[64];
  std::size_t n = tftp_emit_error(buf, TftpErrorCode::FileNotFound, "nope");
  p = TftpPacket::parse({buf, n});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->opcode(), TftpOpcode::Error);
  EXPECT_EQ(p->error_code(), 1);
  EXPECT_EQ(p->error_message(), "nope");
}

TEST(WireTftp, OackAndDataHeader) {
  std::uint8_t buf[64];
  TftpOption o[] = {{"tsize", "1234"}};
  std::size_t n = tftp_emit_oack(buf, o, 1);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf) + 2, n - 2), std::string("tsize\0001234\0", 11));
  EXPECT_EQ(TftpPacket::parse({buf, n})->opcode(), TftpOpcode::Oack);
  EXPECT_EQ(tftp_emit_data_header(buf, 7), 4u);
  EXPECT_EQ(buf[1], 3);
  EXPECT_EQ(buf[3], 7);
}

TEST(WireTftp, EmitTooSmallReturnsZero) {
  std::uint8_t buf[6];
  EXPECT_EQ(tftp_emit_error(buf, TftpErrorCode::NotDefined, "long message"), 0u);
  EXPECT_EQ(tftp_emit_ack({buf, 3}, 1), 0u);
  TftpOption o[] = {{"blksize", "512"}};
  EXPECT_EQ(tftp_emit_oack(buf, o, 1), 0u);
}

// Malformed input, one case each.
TEST(WireTftpMalformed, Empty) { EXPECT_EQ(TftpPacket::parse({}).error(), ParseError::Truncated); }
TEST(WireTftpMalformed, OneByte) {
  auto v = bytes({0});
  EXPECT_EQ(TftpPacket::parse(v).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, UnknownOpcode) {
  auto v = bytes({0, 7, 0, 0});
  EXPECT_EQ(TftpPacket::parse(v).error(), ParseError::Unsupported);
  auto z = bytes({0, 0, 0, 0});
  EXPECT_EQ(TftpPacket::parse(z).error(), ParseError::Unsupported);
}
TEST(WireTftpMalformed, TruncatedAck) {
  auto v = bytes({0, 4, 0});
  EXPECT_EQ(TftpPacket::parse(v).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, TruncatedData) {
  auto v = bytes({0, 3, 1});
  EXPECT_EQ(TftpPacket::parse(v).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, ErrorWithoutNul) {
  auto v = bytes({0, 5, 0, 1}, "no nul");
  EXPECT_EQ(TftpPacket::parse(v).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, FilenameWithoutNul) {
  EXPECT_EQ(request(bytes({0, 1}, "file")).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, ModeWithoutNul) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("file\0octet", 10))).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, MissingMode) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("file\0", 5))).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, EmptyFilename) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("\0octet\0", 7))).error(), ParseError::BadLength);
}
TEST(WireTftpMalformed, EmptyMode) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("f\0\0", 3))).error(), ParseError::BadLength);
}
TEST(WireTftpMalformed, OptionWithoutValue) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("f\0octet\0blksize\0", 16))).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, OptionEmptyValue) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("f\0octet\0blksize\0\0", 17))).error(), ParseError::BadLength);
}
TEST(WireTftpMalformed, OptionValueWithoutNul) {
  EXPECT_EQ(request(bytes({0, 1}, std::string("f\0octet\0blksize\000512", 19))).error(), ParseError::Truncated);
}
TEST(WireTftpMalformed, RequestParseOfData) {
  auto v = bytes({0, 3, 0, 1});
  EXPECT_EQ(TftpRequest::parse(*TftpPacket::parse(v)).error(), ParseError::Unsupported);
}

}  // namespace
}  // namespace vnet::wire
