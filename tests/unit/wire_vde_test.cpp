// The VDE control messages: one test per way a plug's request (or a
// switch's reply) can be wrong, and the round trip of well-formed ones.
#include <gtest/gtest.h>

#include <cstring>

#include "wire/vde.hpp"

namespace vnet::wire {
namespace {

std::vector<std::uint8_t> good_request() { return emit_vde_request("/tmp/sw/.00042-00000", "QEMU user=root"); }

void put32(std::vector<std::uint8_t>& m, std::size_t off, std::uint32_t v) { std::memcpy(m.data() + off, &v, 4); }

TEST(WireVde, RequestRoundTrip) {
  auto m = emit_vde_request("/tmp/sw/.00042-00000", "QEMU user=root", 5);
  EXPECT_EQ(m.size(), kVdeRequestFixed + 15);
  auto p = parse_vde_request(m);
  ASSERT_TRUE(p.ok()) << to_string(p.error);
  EXPECT_EQ(p.request.socket_path, "/tmp/sw/.00042-00000");
  EXPECT_EQ(p.request.description, "QEMU user=root");
  EXPECT_EQ(p.request.port_wish, 5u);
}

TEST(WireVde, RequestWithoutDescription) {
  auto m = good_request();
  m.resize(kVdeRequestFixed);
  auto p = parse_vde_request(m);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.request.description, "");
}

TEST(WireVde, RequestTruncated) {
  auto m = good_request();
  m.resize(kVdeRequestFixed - 1);
  EXPECT_EQ(parse_vde_request(m).error, VdeError::Truncated);
  EXPECT_EQ(parse_vde_request({}).error, VdeError::Truncated);
}

TEST(WireVde, RequestTooLong) {
  auto m = good_request();
  m.resize(kVdeRequestMax + 1, 'x');
  EXPECT_EQ(parse_vde_request(m).error, VdeError::TooLong);
}

TEST(WireVde, RequestBadMagic) {
  auto m = good_request();
  put32(m, 0, 0xcefaedfe);  // the other byte order
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadMagic);
}

TEST(WireVde, RequestBadVersion) {
  auto m = good_request();
  put32(m, 4, 2);
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadVersion);
}

TEST(WireVde, RequestBadType) {
  auto m = good_request();
  put32(m, 8, 1);
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadType);
}

TEST(WireVde, RequestBadFamily) {
  auto m = good_request();
  m[12] = 2;  // AF_INET
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadFamily);
}

TEST(WireVde, RequestPathEmpty) {
  auto m = good_request();
  std::memset(m.data() + 14, 0, kVdePathMax);
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadPath);
}

TEST(WireVde, RequestPathRelative) {
  auto m = emit_vde_request("sw/.00042-00000", "");
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadPath);
}

TEST(WireVde, RequestPathUnterminated) {
  auto m = good_request();
  std::memset(m.data() + 14, '/', kVdePathMax);
  EXPECT_EQ(parse_vde_request(m).error, VdeError::BadPath);
}

TEST(WireVde, DescriptionControlCharactersReplaced) {
  auto m = emit_vde_request("/p", std::string("a\nb\x1b[2Jc\xff", 9));
  auto p = parse_vde_request(m);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.request.description, "a?b?[2Jc?");
}

TEST(WireVde, DescriptionUnterminatedIsCutAtMessageEnd) {
  auto m = good_request();
  m.pop_back();  // drop the NUL
  auto p = parse_vde_request(m);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.request.description, "QEMU user=root");
}

TEST(WireVde, ReplyRoundTrip) {
  auto m = emit_vde_reply("/tmp/sw/003");
  ASSERT_EQ(m.size(), kVdeSockaddrLen);
  auto p = parse_vde_reply(m);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.socket_path, "/tmp/sw/003");
}

TEST(WireVde, ReplyMalformed) {
  auto m = emit_vde_reply("/tmp/sw/003");
  EXPECT_EQ(parse_vde_reply(std::span(m).first(50)).error, VdeError::Truncated);
  auto longer = m;
  longer.push_back(0);
  EXPECT_EQ(parse_vde_reply(longer).error, VdeError::TooLong);
  auto family = m;
  family[0] = 10;
  EXPECT_EQ(parse_vde_reply(family).error, VdeError::BadFamily);
  auto unterminated = m;
  std::memset(unterminated.data() + 2, '/', kVdePathMax);
  EXPECT_EQ(parse_vde_reply(unterminated).error, VdeError::BadPath);
  EXPECT_EQ(parse_vde_reply(emit_vde_reply("relative")).error, VdeError::BadPath);
}

}  // namespace
}  // namespace vnet::wire
