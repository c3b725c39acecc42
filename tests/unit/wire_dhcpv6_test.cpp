#include "wire/dhcpv6.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace vnet::wire {
namespace {

Ipv6Addr addr(std::string_view s) { return *Ipv6Addr::parse(s); }

const std::uint8_t kDuid[] = {0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56};

void put_opt(std::vector<std::uint8_t>& b, std::uint16_t code, std::vector<std::uint8_t> data) {
  b.push_back(static_cast<std::uint8_t>(code >> 8));
  b.push_back(static_cast<std::uint8_t>(code));
  b.push_back(static_cast<std::uint8_t>(data.size() >> 8));
  b.push_back(static_cast<std::uint8_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
}

std::vector<std::uint8_t> solicit_header() { return {1, 0xab, 0xcd, 0xef}; }

std::vector<std::uint8_t> ia_na_data(std::uint32_t iaid, std::vector<std::uint8_t> inner) {
  std::vector<std::uint8_t> d = {static_cast<std::uint8_t>(iaid >> 24), static_cast<std::uint8_t>(iaid >> 16),
                                 static_cast<std::uint8_t>(iaid >> 8), static_cast<std::uint8_t>(iaid),
                                 0, 0, 0, 0, 0, 0, 0, 0};
  d.insert(d.end(), inner.begin(), inner.end());
  return d;
}

TEST(WireDhcpv6, ParsesASolicit) {
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kClientId, {std::begin(kDuid), std::end(kDuid)});
  put_opt(b, dhcp6_opt::kElapsedTime, {0, 5});
  put_opt(b, dhcp6_opt::kRapidCommit, {});
  put_opt(b, dhcp6_opt::kOro, {0, 23, 0, 24});
  put_opt(b, dhcp6_opt::kIaNa, ia_na_data(0x01020304, {}));
  auto m = Dhcp6Message::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Dhcp6MessageType::Solicit);
  EXPECT_EQ(m->xid(), 0xabcdefu);
  EXPECT_EQ(m->client_id().size(), sizeof kDuid);
  EXPECT_TRUE(m->server_id().empty());
  EXPECT_TRUE(m->rapid_commit());
  EXPECT_EQ(m->elapsed_time(), 5);
  EXPECT_TRUE(m->requests_option(dhcp6_opt::kDnsServers));
  EXPECT_TRUE(m->requests_option(dhcp6_opt::kDomainList));
  EXPECT_FALSE(m->requests_option(dhcp6_opt::kPreference));
  int seen = 0;
  m->for_each_ia_na([&](const Dhcp6IaNa& ia) {
    EXPECT_EQ(ia.iaid, 0x01020304u);
    EXPECT_FALSE(ia.first_addr());
    ++seen;
  });
  EXPECT_EQ(seen, 1);
}

TEST(WireDhcpv6, WriterRoundTripWithNestedIa) {
  std::vector<std::uint8_t> buf(512);
  Dhcp6Writer w(buf, Dhcp6MessageType::Reply, 0x123456);
  w.option(dhcp6_opt::kClientId, kDuid);
  w.begin_ia_na(7, 3600, 5760);
  w.begin_ia_addr(addr("fec0::100"), 7200, 10800);
  w.end();
  w.status(Dhcp6Status::Success, "ok");
  w.end();
  const Ipv6Addr dns[] = {addr("fec0::3")};
  w.option_addrs(dhcp6_opt::kDnsServers, dns);
  const std::string_view search[] = {"vnet.test", "bad..name"};
  w.option_domains(dhcp6_opt::kDomainList, search);
  const std::size_t len = w.finish();
  ASSERT_GT(len, 0u);
  auto m = Dhcp6Message::parse(Bytes(buf).first(len));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Dhcp6MessageType::Reply);
  EXPECT_EQ(m->xid(), 0x123456u);
  int seen = 0;
  m->for_each_ia_na([&](const Dhcp6IaNa& ia) {
    EXPECT_EQ(ia.iaid, 7u);
    EXPECT_EQ(ia.t1, 3600u);
    auto a = ia.first_addr();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->addr, addr("fec0::100"));
    EXPECT_EQ(a->valid_lifetime, 10800u);
    ++seen;
  });
  EXPECT_EQ(seen, 1);
  auto d = m->find(dhcp6_opt::kDomainList);
  ASSERT_TRUE(d);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(d->data.data()), d->data.size()),
            std::string_view("\x04vnet\x04test\x00", 11));
}

TEST(WireDhcpv6, WriterRefusesSmallBufferAndUnbalancedNesting) {
  std::vector<std::uint8_t> small(10);
  Dhcp6Writer w(small, Dhcp6MessageType::Reply, 1);
  w.option(dhcp6_opt::kClientId, kDuid);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.finish(), 0u);
  std::vector<std::uint8_t> buf(256);
  Dhcp6Writer open(buf, Dhcp6MessageType::Reply, 1);
  open.begin_ia_na(1, 0, 0);
  EXPECT_EQ(open.finish(), 0u);
  Dhcp6Writer deep(buf, Dhcp6MessageType::Reply, 1);
  deep.begin_ia_na(1, 0, 0);
  deep.begin_ia_addr(addr("fec0::1"), 0, 0);
  deep.begin_ia_addr(addr("fec0::1"), 0, 0);
  EXPECT_FALSE(deep.ok());
  Dhcp6Writer extra(buf, Dhcp6MessageType::Reply, 1);
  extra.end();
  EXPECT_FALSE(extra.ok());
}

TEST(WireDhcpv6Malformed, Truncated) {
  const std::uint8_t b[3] = {1, 2, 3};
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::Truncated);
}

TEST(WireDhcpv6Malformed, RelayIsUnsupported) {
  const std::uint8_t b[4] = {12, 0, 0, 0};
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::Unsupported);
}

TEST(WireDhcpv6Malformed, OptionLengthPastTheEnd) {
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kClientId, {std::begin(kDuid), std::end(kDuid)});
  b[4 + 3] += 1;  // claims one byte more than there is
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
  auto half = solicit_header();
  half.insert(half.end(), {0, 1, 0});  // three bytes of an option header
  EXPECT_EQ(Dhcp6Message::parse(half).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, ZeroLengthIdentifiers) {
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kClientId, {});
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
  auto s = solicit_header();
  put_opt(s, dhcp6_opt::kServerId, {});
  EXPECT_EQ(Dhcp6Message::parse(s).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, ZeroLengthUnknownOptionIsFine) {
  auto b = solicit_header();
  put_opt(b, 999, {});
  put_opt(b, 999, {});
  EXPECT_TRUE(Dhcp6Message::parse(b));
}

TEST(WireDhcpv6Malformed, OversizedDuid) {
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kClientId, std::vector<std::uint8_t>(kMaxDuidLen + 1, 1));
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, BadFixedSizeOptions) {
  auto odd_oro = solicit_header();
  put_opt(odd_oro, dhcp6_opt::kOro, {0, 23, 0});
  EXPECT_EQ(Dhcp6Message::parse(odd_oro).error(), ParseError::BadOption);
  auto elapsed = solicit_header();
  put_opt(elapsed, dhcp6_opt::kElapsedTime, {0});
  EXPECT_EQ(Dhcp6Message::parse(elapsed).error(), ParseError::BadOption);
  auto rapid = solicit_header();
  put_opt(rapid, dhcp6_opt::kRapidCommit, {1});
  EXPECT_EQ(Dhcp6Message::parse(rapid).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, IaNaShorterThanItsFixedPart) {
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kIaNa, {0, 0, 0, 1, 0, 0, 0, 0});
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, NestedIaAddrOverflowsItsIaNa) {
  // The IAADDR claims 24 bytes but the IA_NA ends after 10 of them.
  std::vector<std::uint8_t> inner = {0, 5, 0, 24, 0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0};
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kIaNa, ia_na_data(1, inner));
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, NestedIaAddrTooShort) {
  std::vector<std::uint8_t> inner;
  put_opt(inner, dhcp6_opt::kIaAddr, std::vector<std::uint8_t>(20, 0));
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kIaNa, ia_na_data(1, inner));
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
}

TEST(WireDhcpv6Malformed, OptionInsideIaAddrOverflows) {
  std::vector<std::uint8_t> addr_data(24, 0);
  addr_data.insert(addr_data.end(), {0, 13, 0, 9, 0, 0});  // status code claiming 9 bytes, has 2
  std::vector<std::uint8_t> inner;
  put_opt(inner, dhcp6_opt::kIaAddr, addr_data);
  auto b = solicit_header();
  put_opt(b, dhcp6_opt::kIaNa, ia_na_data(1, inner));
  EXPECT_EQ(Dhcp6Message::parse(b).error(), ParseError::BadOption);
}

}  // namespace
}  // namespace vnet::wire
