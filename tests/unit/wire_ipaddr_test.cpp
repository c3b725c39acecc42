#include "wire/ipaddr.hpp"

#include <gtest/gtest.h>

#include <unordered_set>

namespace vnet::wire {
namespace {

TEST(WireIpAddr, Ipv4ParseAndFormat) {
  auto a = Ipv4Addr::parse("10.0.2.15");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->octets, (std::array<std::uint8_t, 4>{10, 0, 2, 15}));
  EXPECT_EQ(a->to_u32(), 0x0a00020fu);
  EXPECT_EQ(Ipv4Addr::from_u32(0x0a00020f), *a);
  EXPECT_EQ(a->to_string(), "10.0.2.15");
  EXPECT_FALSE(Ipv4Addr::parse("10.0.2"));
  EXPECT_FALSE(Ipv4Addr::parse("10.0.2.256"));
  EXPECT_FALSE(Ipv4Addr::parse(""));
  EXPECT_FALSE(Ipv4Addr::parse("::1"));
}

TEST(WireIpAddr, Ipv4Classes) {
  EXPECT_TRUE(Ipv4Addr::broadcast().is_broadcast());
  EXPECT_TRUE(Ipv4Addr{}.is_unspecified());
  EXPECT_TRUE(Ipv4Addr::parse("224.0.0.251")->is_multicast());
  EXPECT_TRUE(Ipv4Addr::parse("127.0.0.1")->is_loopback());
  EXPECT_TRUE(Ipv4Addr::parse("169.254.1.1")->is_link_local());
}

TEST(WireIpAddr, Ipv6ParseAndFormat) {
  auto a = Ipv6Addr::parse("fe80::5054:ff:fe12:3456");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_link_local());
  EXPECT_EQ(a->to_string(), "fe80::5054:ff:fe12:3456");
  EXPECT_FALSE(Ipv6Addr::parse("fe80:::1"));
  EXPECT_TRUE(Ipv6Addr::parse("ff02::1")->is_multicast());
  EXPECT_TRUE(Ipv6Addr::loopback().is_loopback());
  // Longer than any valid address text must be rejected, not overflow.
  EXPECT_FALSE(Ipv6Addr::parse(std::string(200, '1')));
}

TEST(WireIpAddr, IpAddrHoldsV4Mapped) {
  IpAddr a(Ipv4Addr{{192, 168, 1, 2}});
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.v4(), (Ipv4Addr{{192, 168, 1, 2}}));
  EXPECT_EQ(a.v6().to_string(), "::ffff:192.168.1.2");
  EXPECT_EQ(a.to_string(), "192.168.1.2");
  EXPECT_EQ(*IpAddr::parse("192.168.1.2"), a);
  EXPECT_EQ(*IpAddr::parse("::ffff:192.168.1.2"), a);

  auto b = IpAddr::parse("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->is_v6());
  EXPECT_EQ(b->to_string(), "2001:db8::1");
  EXPECT_FALSE(IpAddr::parse("not an address"));
  EXPECT_FALSE(IpAddr{}.is_v4());
}

TEST(WireIpAddr, HashAndOrder) {
  std::unordered_set<IpAddr> set;
  set.insert(Ipv4Addr{{10, 0, 0, 1}});
  set.insert(Ipv4Addr{{10, 0, 0, 1}});
  set.insert(*Ipv6Addr::parse("::1"));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_LT(IpAddr(Ipv4Addr{{10, 0, 0, 1}}), IpAddr(Ipv4Addr{{10, 0, 0, 2}}));
}

TEST(WireIpAddr, CidrParseAndContains) {
  auto c = Ipv4Cidr::parse("10.0.2.0/24");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_len, 24);
  EXPECT_TRUE(c->contains(*Ipv4Addr::parse("10.0.2.255")));
  EXPECT_FALSE(c->contains(*Ipv4Addr::parse("10.0.3.0")));
  EXPECT_EQ(c->netmask().to_string(), "255.255.255.0");
  EXPECT_EQ(c->broadcast().to_string(), "10.0.2.255");
  EXPECT_EQ(Ipv4Cidr::parse("10.0.2.2/24")->network().to_string(), "10.0.2.0");
  EXPECT_EQ(c->to_string(), "10.0.2.0/24");

  auto all = Ipv4Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(Ipv4Addr::broadcast()));
  EXPECT_EQ(Ipv4Cidr::parse("1.2.3.4")->prefix_len, 32);
}

TEST(WireIpAddr, CidrRejectsGarbage) {
  EXPECT_FALSE(Ipv4Cidr::parse("10.0.2.0/33"));
  EXPECT_FALSE(Ipv4Cidr::parse("10.0.2.0/"));
  EXPECT_FALSE(Ipv4Cidr::parse("10.0.2.0/2x"));
  EXPECT_FALSE(Ipv4Cidr::parse("10.0.2.0/-1"));
  EXPECT_FALSE(Ipv4Cidr::parse("/24"));
}

}  // namespace
}  // namespace vnet::wire
