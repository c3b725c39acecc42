// DNS message view: well-formed messages, and one test per malformed case.
#include "wire/dns.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vnet::wire {
namespace {

using Msg = std::vector<std::uint8_t>;

Msg header(std::uint16_t id, std::uint8_t flags_hi, std::uint16_t qd, std::uint16_t an = 0, std::uint16_t ar = 0) {
  return {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), flags_hi, 0,
          static_cast<std::uint8_t>(qd >> 8), static_cast<std::uint8_t>(qd),
          static_cast<std::uint8_t>(an >> 8), static_cast<std::uint8_t>(an), 0, 0,
          static_cast<std::uint8_t>(ar >> 8), static_cast<std::uint8_t>(ar)};
}

void append(Msg& m, std::initializer_list<std::uint8_t> b) { m.insert(m.end(), b); }

// www.example A IN, as a query.
Msg query() {
  Msg m = header(0xbeef, 0x01, 1);
  append(m, {3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1});
  return m;
}

TEST(WireDns, ParsesQuery) {
  Msg m = query();
  auto q = DnsMessage::parse_query(m);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->id(), 0xbeef);
  EXPECT_FALSE(q->is_response());
  EXPECT_FALSE(q->truncated());
  EXPECT_EQ(q->qdcount(), 1);
  EXPECT_EQ(q->questions_end(), m.size());
  auto question = q->question();
  ASSERT_TRUE(question);
  EXPECT_EQ(question->name.to_string(), "www.example.");
  EXPECT_EQ(question->qtype, 1);
  EXPECT_EQ(question->qclass, 1);
  EXPECT_FALSE(q->edns_udp_size());
}

TEST(WireDns, FollowsCompressionPointers) {
  Msg m = query();
  m[2] = 0x81;  // response
  m[7] = 1;     // ANCOUNT
  const std::size_t rr = m.size();
  append(m, {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1});
  auto msg = DnsMessage::parse(m);
  ASSERT_TRUE(msg);
  DnsName name;
  auto after = read_dns_name(m, rr, name);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, rr + 2);
  EXPECT_TRUE(name.equals(msg->question()->name));
  // A label followed by a pointer to a suffix.
  const std::size_t mixed = m.size();
  append(m, {4, 'm', 'a', 'i', 'l', 0xc0, 16});
  after = read_dns_name(m, mixed, name);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, m.size());
  EXPECT_EQ(name.to_string(), "mail.example.");
}

TEST(WireDns, NamesCompareCaseInsensitively) {
  Msg a = query(), b = query();
  b[13] = 'W';
  EXPECT_TRUE(DnsMessage::parse(a)->question()->same_as(*DnsMessage::parse(b)->question()));
  b[14] = 'x';
  EXPECT_FALSE(DnsMessage::parse(a)->question()->same_as(*DnsMessage::parse(b)->question()));
}

TEST(WireDns, RejectsTruncatedHeader) {
  Msg m = query();
  m.resize(11);
  auto r = DnsMessage::parse(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ParseError::Truncated);
}

TEST(WireDns, RejectsTruncatedLabel) {
  Msg m = header(1, 0x01, 1);
  append(m, {5, 'a', 'b'});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::Truncated);
}

TEST(WireDns, RejectsMissingTypeAndClass) {
  Msg m = header(1, 0x01, 1);
  append(m, {1, 'a', 0, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::Truncated);
}

TEST(WireDns, RejectsPointerToItself) {
  Msg m = header(1, 0x01, 1);
  append(m, {0xc0, 0x0c, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::BadLength);
}

TEST(WireDns, RejectsPointerLoopThroughLabels) {
  // offset 12: label "a" then a pointer back to 12: a.a.a.a... forever.
  Msg m = header(1, 0x01, 1);
  append(m, {1, 'a', 0xc0, 0x0c, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::BadLength);
}

TEST(WireDns, RejectsTwoPointerLoop) {
  // A record name at 29 points to 31, which points back to 29.
  Msg m = query();
  m[7] = 1;
  const std::size_t rr = m.size();
  append(m, {0xc0, static_cast<std::uint8_t>(rr + 2), 0xc0, static_cast<std::uint8_t>(rr)});
  DnsName name;
  EXPECT_FALSE(read_dns_name(m, rr, name));
}

TEST(WireDns, RejectsPointerOutOfRange) {
  Msg m = header(1, 0x01, 1);
  append(m, {0xc0, 0xff, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::BadLength);
  DnsName name;
  Msg tail = query();
  append(tail, {0xc0});  // half a pointer at the end
  EXPECT_EQ(read_dns_name(tail, tail.size() - 1, name).error(), ParseError::Truncated);
}

TEST(WireDns, RejectsPointerIntoHeader) {
  Msg m = header(1, 0x01, 1);
  append(m, {1, 'r', 0xc0, 0x00, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::BadLength);
}

TEST(WireDns, RejectsPointedNameRunningPastThePointer) {
  // At 12 a label of 8 covers the pointer at 14 that refers back to it.
  Msg m = header(1, 0x01, 1);
  append(m, {0xc0, 0x0e, 8, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 0, 0, 1, 0, 1});
  DnsName name;
  EXPECT_FALSE(read_dns_name(m, 12, name));
}

TEST(WireDns, RejectsLabelTooLong) {
  Msg m = header(1, 0x01, 1);
  m.push_back(64);  // 0x40: the reserved extended-label type, not a length
  m.resize(m.size() + 64, 'a');
  append(m, {0, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::Unsupported);
}

TEST(WireDns, RejectsNameTooLong) {
  Msg m = header(1, 0x01, 1);
  for (int i = 0; i < 5; ++i) {  // 5 * 64 = 320 > 255
    m.push_back(63);
    m.resize(m.size() + 63, 'a');
  }
  append(m, {0, 0, 1, 0, 1});
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::BadLength);
}

TEST(WireDns, AcceptsLongestName) {
  Msg m = header(1, 0x01, 1);
  for (int i = 0; i < 3; ++i) {
    m.push_back(63);
    m.resize(m.size() + 63, 'a');
  }
  m.push_back(61);  // 3*64 + 62 + root = 255
  m.resize(m.size() + 61, 'b');
  append(m, {0, 0, 1, 0, 1});
  auto msg = DnsMessage::parse(m);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->question()->name.len, 255);
}

TEST(WireDns, RejectsQdcountMismatch) {
  Msg m = query();
  m[5] = 2;
  EXPECT_EQ(DnsMessage::parse(m).error(), ParseError::Truncated);
}

TEST(WireDns, QueryRules) {
  Msg resp = query();
  resp[2] |= 0x80;
  EXPECT_FALSE(DnsMessage::parse_query(resp));
  Msg none = header(1, 0x01, 0);
  EXPECT_TRUE(DnsMessage::parse(none));
  EXPECT_FALSE(DnsMessage::parse_query(none));
  EXPECT_FALSE(DnsMessage::parse(none)->question());
  Msg notify = query();
  notify[2] = 0x20;  // opcode 4
  EXPECT_FALSE(DnsMessage::parse_query(notify));
}

TEST(WireDns, ReadsEdnsSize) {
  Msg m = query();
  m[11] = 1;
  append(m, {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(DnsMessage::parse(m)->edns_udp_size(), 4096);
  m[m.size() - 8] = 0;
  m[m.size() - 7] = 100;  // below 512 means 512
  EXPECT_EQ(DnsMessage::parse(m)->edns_udp_size(), 512);
  m.resize(m.size() - 1);  // rdlength overruns
  EXPECT_FALSE(DnsMessage::parse(m)->edns_udp_size());
}

TEST(WireDns, TruncateKeepsHeaderAndQuestion) {
  Msg m = query();
  m[2] = 0x81;
  m[7] = 1;
  append(m, {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1});
  auto msg = DnsMessage::parse(m);
  std::uint8_t out[512];
  const std::size_t n = dns_truncate(*msg, out);
  ASSERT_EQ(n, msg->questions_end());
  auto t = DnsMessage::parse(Bytes(out, n));
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->truncated());
  EXPECT_TRUE(t->is_response());
  EXPECT_EQ(t->ancount(), 0);
  EXPECT_EQ(t->id(), 0xbeef);
  EXPECT_EQ(dns_truncate(*msg, MutBytes(out, 5)), 0u);
}

}  // namespace
}  // namespace vnet::wire
