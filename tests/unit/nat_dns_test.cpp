// DNS forwarder against fake upstream resolvers on loopback, started here.
#include "nat/dns.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/fake_guest_io.hpp"
#include "wire/dns.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
using testing::FakeGuestIo;
using testing::run_for;
using testing::run_until;

const Ipv4Addr kGuest{{10, 0, 2, 15}};
const Ipv4Addr kDns{{10, 0, 2, 3}};
constexpr std::uint16_t kGuestId = 0x1234;

// www.test A IN, RD; with an OPT record when edns_size is non-zero.
std::vector<std::uint8_t> make_query(std::uint16_t id, std::uint16_t edns_size = 0) {
  std::vector<std::uint8_t> q = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x01, 0x00,
                                 0, 1, 0, 0, 0, 0, 0, edns_size ? std::uint8_t{1} : std::uint8_t{0}};
  const std::uint8_t name[] = {3, 'w', 'w', 'w', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
  q.insert(q.end(), std::begin(name), std::end(name));
  if (edns_size) {
    const std::uint8_t opt[] = {0, 0, 41, static_cast<std::uint8_t>(edns_size >> 8),
                                static_cast<std::uint8_t>(edns_size), 0, 0, 0, 0, 0, 0};
    q.insert(q.end(), std::begin(opt), std::end(opt));
  }
  return q;
}

// An answer to `query` with `records` A records of addr (or none and TC set).
std::vector<std::uint8_t> make_answer(Bytes query, std::array<std::uint8_t, 4> addr, int records, bool tc) {
  auto msg = DnsMessage::parse(query);
  std::vector<std::uint8_t> a(query.begin(), query.begin() + static_cast<std::ptrdiff_t>(msg->questions_end()));
  a[2] = static_cast<std::uint8_t>(0x81 | (tc ? 0x02 : 0));
  a[3] = 0x80;
  store_be16(a, 6, static_cast<std::uint16_t>(records));
  store_be16(a, 8, 0);
  store_be16(a, 10, 0);
  for (int i = 0; i < records; ++i) {
    const std::uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, addr[0], addr[1], addr[2],
                               static_cast<std::uint8_t>(addr[3] + i)};
    a.insert(a.end(), std::begin(rr), std::end(rr));
  }
  return a;
}

SockAddr v4(const char* ip, std::uint16_t port) {
  SockAddr s;
  auto* in = reinterpret_cast<sockaddr_in*>(&s.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
  s.length = sizeof(sockaddr_in);
  return s;
}

// A resolver on ip:port (0: any free port). It answers every query with an A
// record of `addr` over UDP; with tc_over_udp it sets TC and serves the full
// answer (tcp_records records) over TCP on the same port. silent: never answers.
class FakeResolver {
 public:
  FakeResolver(EventLoop& loop, const char* ip, std::uint16_t port, std::array<std::uint8_t, 4> addr)
      : loop_(loop), addr_(addr) {
    udp_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    tcp_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(tcp_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    SockAddr a = v4(ip, port);
    if (::bind(udp_.get(), a.get(), a.length) != 0) return;
    sockaddr_in got{};
    socklen_t len = sizeof got;
    ::getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&got), &len);
    port_ = ntohs(got.sin_port);
    a = v4(ip, port_);
    if (::bind(tcp_.get(), a.get(), a.length) != 0 || ::listen(tcp_.get(), 4) != 0) return;
    ok_ = true;
    loop_.add(udp_.get(), EPOLLIN, [this](std::uint32_t) { on_udp(); });
    loop_.add(tcp_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
  }
  ~FakeResolver() {
    if (ok_) {
      loop_.remove(udp_.get());
      loop_.remove(tcp_.get());
    }
    for (auto& [fd, c] : conns_) loop_.remove(fd);
  }

  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  bool silent = false;
  bool tc_over_udp = false;
  int tcp_records = 1;
  std::vector<std::uint16_t> udp_ids;  // IDs of queries seen over UDP
  int tcp_queries = 0;
  sockaddr_storage last_from{};  // the forwarder's socket

  void send_raw(const std::vector<std::uint8_t>& m) {
    ::sendto(udp_.get(), m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&last_from), sizeof(sockaddr_in));
  }

 private:
  void on_udp() {
    std::uint8_t buf[1500];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(udp_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) return;
    udp_ids.push_back(load_be16(Bytes(buf, 2), 0));
    std::memcpy(&last_from, &from, sizeof from);
    if (silent) return;
    auto ans = make_answer(Bytes(buf, static_cast<std::size_t>(n)), addr_, tc_over_udp ? 0 : 1, tc_over_udp);
    ::sendto(udp_.get(), ans.data(), ans.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
  void on_accept() {
    UniqueFd c(::accept4(tcp_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c) return;
    const int fd = c.get();
    conns_[fd].first = std::move(c);
    loop_.add(fd, EPOLLIN, [this, fd](std::uint32_t) { on_conn(fd); });
  }
  // Collects one framed query, answers it, closes.
  void on_conn(int fd) {
    auto& request = conns_[fd].second;
    std::uint8_t buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) request.insert(request.end(), buf, buf + n);
    if (request.size() < 2 || request.size() < 2u + load_be16(request, 0)) {
      if (n == 0) close_conn(fd);
      return;
    }
    tcp_queries++;
    auto ans = make_answer(Bytes(request).subspan(2), addr_, tcp_records, false);
    std::vector<std::uint8_t> framed(2);
    store_be16(framed, 0, static_cast<std::uint16_t>(ans.size()));
    framed.insert(framed.end(), ans.begin(), ans.end());
    ::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);  // small: fits the socket buffer
    close_conn(fd);
  }
  void close_conn(int fd) {
    loop_.remove(fd);
    conns_.erase(fd);
  }

  EventLoop& loop_;
  std::array<std::uint8_t, 4> addr_;
  UniqueFd udp_, tcp_;
  std::map<int, std::pair<UniqueFd, std::vector<std::uint8_t>>> conns_;
  std::uint16_t port_ = 0;
  bool ok_ = false;
};

struct GuestAnswer {
  std::uint16_t dport = 0;
  std::vector<std::uint8_t> dns;
};

GuestAnswer answer_of(const testing::SentPacket& p) {
  EXPECT_EQ(p.src, kDns);
  EXPECT_EQ(p.dst, kGuest);
  EXPECT_EQ(p.proto, IpProtocol::Udp);
  auto udp = UdpPacket::parse(p.l4);
  EXPECT_TRUE(udp);
  if (!udp) return {};
  EXPECT_EQ(udp->src_port(), 53);
  EXPECT_TRUE(udp->verify_checksum(IpAddr(p.src), IpAddr(p.dst)));
  return {udp->dst_port(), {udp->payload().begin(), udp->payload().end()}};
}

NatConfig with_upstreams(std::vector<std::string> ups) {
  NatConfig cfg;
  cfg.dns_upstream = std::move(ups);
  return cfg;
}

TEST(NatDns, ForwardsWithFreshIdAndRestoresGuestId) {
  EventLoop loop;
  FakeResolver up(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(up.ok());
  FakeGuestIo io(loop, with_upstreams({up.endpoint()}));
  DnsForwarder dns(io);
  EXPECT_EQ(dns.status()["source"], "configured");
  EXPECT_EQ(dns.status()["upstreams"][0], up.endpoint());

  // Two queries with the same guest ID from different ports must not mix.
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  dns.on_query(kGuest, 5001, make_query(kGuestId));
  EXPECT_EQ(dns.status()["pending"], 2);
  ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 2; }, 2 * kSeconds));
  ASSERT_EQ(up.udp_ids.size(), 2u);
  EXPECT_NE(up.udp_ids[0], up.udp_ids[1]);  // remapped to distinct IDs

  std::set<std::uint16_t> ports;
  for (const auto& p : io.sent) {
    GuestAnswer a = answer_of(p);
    ports.insert(a.dport);
    auto msg = DnsMessage::parse(a.dns);
    ASSERT_TRUE(msg);
    EXPECT_EQ(msg->id(), kGuestId);
    EXPECT_TRUE(msg->is_response());
    EXPECT_EQ(msg->ancount(), 1);
    EXPECT_EQ(msg->question()->name.to_string(), "www.test.");
    // The A record's address is the last four bytes.
    EXPECT_EQ(std::vector<std::uint8_t>(a.dns.end() - 4, a.dns.end()), (std::vector<std::uint8_t>{198, 51, 100, 10}));
  }
  EXPECT_EQ(ports, (std::set<std::uint16_t>{5000, 5001}));
  EXPECT_EQ(io.counters().dns_queries, 2u);
  EXPECT_EQ(io.counters().dns_answers, 2u);
  EXPECT_EQ(dns.status()["pending"], 0);
  ASSERT_TRUE(dns.tcp_upstream());
  EXPECT_EQ(dns.tcp_upstream()->to_string(), up.endpoint());
}

TEST(NatDns, Ipv6GuestIsAnsweredFromTheIpv6DnsAddress) {
  EventLoop loop;
  FakeResolver up(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(up.ok());
  NatConfig cfg = with_upstreams({up.endpoint()});
  cfg.mtu = 1280;  // the IPv6 minimum: the room left for an answer is 1280 - 40 - 8
  FakeGuestIo io(loop, cfg);
  DnsForwarder dns(io);
  const Ipv6Addr guest{{0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00}};
  dns.on_query(IpAddr(guest), 5000, make_query(kGuestId, 4096));
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 2 * kSeconds));
  const auto& p = io.sent[0];
  EXPECT_EQ(p.src, IpAddr(cfg.dns6));
  EXPECT_EQ(p.dst, IpAddr(guest));
  auto udp = UdpPacket::parse(p.l4);
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->src_port(), 53);
  EXPECT_EQ(udp->dst_port(), 5000);
  EXPECT_TRUE(udp->verify_checksum(p.src, p.dst));
  auto msg = DnsMessage::parse(udp->payload());
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->id(), kGuestId);
  EXPECT_EQ(msg->ancount(), 1);
  EXPECT_EQ(io.counters().dns_answers, 1u);
}

TEST(NatDns, TruncatedAnswerIsRetriedOverTcp) {
  EventLoop loop;
  FakeResolver up(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(up.ok());
  up.tc_over_udp = true;
  up.tcp_records = 3;
  FakeGuestIo io(loop, with_upstreams({up.endpoint()}));
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 3 * kSeconds));
  EXPECT_EQ(up.tcp_queries, 1);
  GuestAnswer a = answer_of(io.sent[0]);
  auto msg = DnsMessage::parse(a.dns);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->id(), kGuestId);
  EXPECT_FALSE(msg->truncated());
  EXPECT_EQ(msg->ancount(), 3);  // the full answer
  EXPECT_EQ(io.counters().dns_answers, 1u);
  EXPECT_EQ(dns.status()["tcp_pending"], 0);
}

TEST(NatDns, AnswerTooLargeForGuestComesBackTruncated) {
  EventLoop loop;
  FakeResolver up(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(up.ok());
  up.tc_over_udp = true;
  up.tcp_records = 40;  // 40 * 16 bytes: over the 512 a guest without EDNS takes
  FakeGuestIo io(loop, with_upstreams({up.endpoint()}));
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  dns.on_query(kGuest, 5001, make_query(kGuestId + 1, 4096));  // EDNS: takes it all
  ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 2; }, 3 * kSeconds));
  for (const auto& p : io.sent) {
    GuestAnswer a = answer_of(p);
    auto msg = DnsMessage::parse(a.dns);
    ASSERT_TRUE(msg);
    if (a.dport == 5000) {
      EXPECT_EQ(msg->id(), kGuestId);
      EXPECT_TRUE(msg->truncated());
      EXPECT_EQ(msg->ancount(), 0);
      EXPECT_LE(a.dns.size(), 512u);
    } else {
      EXPECT_EQ(msg->id(), kGuestId + 1);
      EXPECT_FALSE(msg->truncated());
      EXPECT_EQ(msg->ancount(), 40);
    }
  }
}

// A GuestIo whose l4 buffer is as large as the MTU (as the gateway's was):
// the forwarder must still leave room for the IPv4 header itself.
struct MtuSizedBufferIo : FakeGuestIo {
  MtuSizedBufferIo(EventLoop& loop, NatConfig c) : FakeGuestIo(loop, std::move(c)) { l4_room = cfg.mtu; }
};

TEST(NatDns, AnswerJustUnderMtuComesBackTruncated) {
  // Issue 7 item 10: a 1477..1492-byte answer fits "the MTU" but not an IP
  // datagram of MTU size; it used to be sent whole and dropped as oversize.
  EventLoop loop;
  FakeResolver up(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(up.ok());
  up.tc_over_udp = true;
  up.tcp_records = 91;  // 26 + 91 * 16 = 1482 bytes
  MtuSizedBufferIo io(loop, with_upstreams({up.endpoint()}));
  ASSERT_EQ(io.config().mtu, 1500u);
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId, 4096));
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 3 * kSeconds));
  GuestAnswer a = answer_of(io.sent[0]);
  auto msg = DnsMessage::parse(a.dns);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->id(), kGuestId);
  EXPECT_TRUE(msg->truncated());
  EXPECT_LE(a.dns.size(), 1500u - 20u - 8u);
}

TEST(NatDns, TimeoutMovesToNextUpstream) {
  EventLoop loop;
  FakeResolver dead(loop, "127.0.0.1", 0, {0, 0, 0, 0});
  FakeResolver good(loop, "127.0.0.1", 0, {198, 51, 100, 10});
  ASSERT_TRUE(dead.ok() && good.ok());
  dead.silent = true;
  FakeGuestIo io(loop, with_upstreams({dead.endpoint(), good.endpoint()}));
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 4 * kSeconds));
  EXPECT_EQ(dead.udp_ids.size(), 1u);
  EXPECT_EQ(good.udp_ids.size(), 1u);
  EXPECT_EQ(io.counters().dns_timeouts, 1u);
  EXPECT_EQ(io.counters().dns_answers, 1u);
  EXPECT_EQ(DnsMessage::parse(answer_of(io.sent[0]).dns)->id(), kGuestId);
}

TEST(NatDns, GivesUpWhenNoUpstreamAnswers) {
  EventLoop loop;
  FakeResolver dead(loop, "127.0.0.1", 0, {0, 0, 0, 0});
  ASSERT_TRUE(dead.ok());
  dead.silent = true;
  FakeGuestIo io(loop, with_upstreams({dead.endpoint()}));
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  ASSERT_TRUE(run_until(loop, [&] { return dns.status()["pending"] == 0; }, 4 * kSeconds));
  EXPECT_EQ(io.counters().dns_timeouts, 1u);
  EXPECT_TRUE(io.sent.empty());  // nothing fabricated
}

TEST(NatDns, OneGuestsUnansweredQueriesLeaveRoomForAnother) {
  EventLoop loop;
  FakeResolver dead(loop, "127.0.0.1", 0, {0, 0, 0, 0});
  ASSERT_TRUE(dead.ok());
  dead.silent = true;
  FakeGuestIo io(loop, with_upstreams({dead.endpoint()}));
  const Ipv4Addr other{{10, 0, 2, 16}};
  io.macs[IpAddr(kGuest)] = MacAddr{{0x52, 0x54, 0, 0, 0, 0x15}};
  io.macs[IpAddr(other)] = MacAddr{{0x52, 0x54, 0, 0, 0, 0x16}};
  DnsForwarder dns(io);
  // The flooding guest's queries go nowhere and stay pending; past its
  // share (a quarter of the forwarder's 1024) they are refused.
  for (int i = 0; i < 400; ++i) dns.on_query(kGuest, static_cast<std::uint16_t>(5000 + i), make_query(kGuestId));
  EXPECT_EQ(dns.status()["pending"], 256);
  EXPECT_EQ(io.counters().drop_guest_dns, 144u);
  // Another guest still gets its queries forwarded.
  dns.on_query(other, 6000, make_query(kGuestId));
  EXPECT_EQ(dns.status()["pending"], 257);
  EXPECT_EQ(io.counters().drop_guest_dns, 144u);
}

TEST(NatDns, IgnoresAnswersFromStrangersAndWrongQuestions) {
  EventLoop loop;
  FakeResolver dead(loop, "127.0.0.1", 0, {0, 0, 0, 0});
  ASSERT_TRUE(dead.ok());
  dead.silent = true;
  FakeGuestIo io(loop, with_upstreams({dead.endpoint()}));
  DnsForwarder dns(io);
  dns.on_query(kGuest, 5000, make_query(kGuestId));
  ASSERT_TRUE(run_until(loop, [&] { return dead.udp_ids.size() == 1; }, 1 * kSeconds));
  // A stranger that knows our ID and port forges an answer: ignored.
  UniqueFd stranger(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  auto forged = make_answer(make_query(dead.udp_ids[0]), {6, 6, 6, 6}, 1, false);
  ::sendto(stranger.get(), forged.data(), forged.size(), 0, reinterpret_cast<const sockaddr*>(&dead.last_from),
           sizeof(sockaddr_in));
  // The upstream itself, answering another question with our ID: ignored.
  auto other = make_query(dead.udp_ids[0]);
  other[13] = 'x';  // wxw.test
  auto wrong = make_answer(other, {6, 6, 6, 6}, 1, false);
  dead.send_raw(wrong);
  run_for(loop, 200 * kMillis);
  EXPECT_TRUE(io.sent.empty());
  EXPECT_EQ(dns.status()["pending"], 1);
  // The real answer still goes through.
  dead.send_raw(make_answer(make_query(dead.udp_ids[0]), {198, 51, 100, 10}, 1, false));
  ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 1; }, 1 * kSeconds));
  EXPECT_EQ(DnsMessage::parse(answer_of(io.sent[0]).dns)->id(), kGuestId);
}

TEST(NatDns, MalformedQueriesAreCountedDrops) {
  EventLoop loop;
  FakeGuestIo io(loop, with_upstreams({"127.0.0.1:1"}));
  DnsForwarder dns(io);
  const std::uint8_t short_header[] = {0x12, 0x34, 0x01};
  dns.on_query(kGuest, 5000, short_header);
  auto response = make_query(kGuestId);
  response[2] |= 0x80;  // QR set: not a query
  dns.on_query(kGuest, 5000, response);
  auto two_questions = make_query(kGuestId);
  two_questions[5] = 2;  // QDCOUNT 2, one present
  dns.on_query(kGuest, 5000, two_questions);
  auto loop_name = make_query(kGuestId);
  loop_name[12] = 0xc0;  // the name points at itself
  loop_name[13] = 0x0c;
  dns.on_query(kGuest, 5000, loop_name);
  EXPECT_EQ(io.counters().drop_malformed, 4u);
  EXPECT_EQ(io.counters().dns_queries, 0u);
  EXPECT_EQ(dns.status()["pending"], 0);
}

TEST(NatDns, UpstreamSyntax) {
  EventLoop loop;
  FakeGuestIo io(loop, with_upstreams({"192.0.2.1", "192.0.2.2:5353", "2001:db8::1", "[2001:db8::2]:54",
                                            "not-an-address", "192.0.2.3:99999"}));
  DnsForwarder dns(io);
  auto ups = dns.status()["upstreams"];
  ASSERT_EQ(ups.size(), 4u);
  EXPECT_EQ(ups[0], "192.0.2.1:53");
  EXPECT_EQ(ups[1], "192.0.2.2:5353");
  EXPECT_EQ(ups[2], "[2001:db8::1]:53");
  EXPECT_EQ(ups[3], "[2001:db8::2]:54");
  EXPECT_EQ(dns.tcp_upstream()->to_string(), "192.0.2.1:53");
}

class TempResolvConf {
 public:
  TempResolvConf() {
    char tmpl[] = "/tmp/vnet-resolv-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    path_ = tmpl;
  }
  ~TempResolvConf() { std::remove(path_.c_str()); }
  // Replaces the file the way resolvconf/NetworkManager do: write, rename.
  void write(const std::string& text) {
    const std::string tmp = path_ + ".new";
    std::ofstream(tmp) << text;
    std::rename(tmp.c_str(), path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(NatDns, FollowsResolvConfChanges) {
  EventLoop loop;
  TempResolvConf rc;
  rc.write("# generated\nsearch example\nnameserver 127.0.0.77\nnameserver ::1\noptions edns0\n");
  NatConfig cfg;
  cfg.resolv_conf = rc.path();
  FakeGuestIo io(loop, cfg);
  DnsForwarder dns(io);
  EXPECT_EQ(dns.status()["source"], "resolv.conf");
  EXPECT_EQ(dns.status()["upstreams"], (nlohmann::json{"127.0.0.77:53", "[::1]:53"}));

  // Resolvers on port 53 of two loopback addresses (needs root to bind 53).
  FakeResolver a(loop, "127.0.0.77", 53, {198, 51, 100, 10});
  FakeResolver b(loop, "127.0.0.78", 53, {198, 51, 100, 20});
  const bool can_bind = a.ok() && b.ok();
  if (can_bind) {
    dns.on_query(kGuest, 5000, make_query(kGuestId));
    ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 1; }, 2 * kSeconds));
    EXPECT_EQ(answer_of(io.sent[0]).dns.back(), 10);
  }

  rc.write("nameserver 127.0.0.78\n");
  run_for(loop, 2100 * kMillis);  // the file is checked at most every 2 s
  EXPECT_EQ(dns.tcp_upstream()->to_string(), "127.0.0.78:53");
  EXPECT_EQ(dns.status()["upstreams"], (nlohmann::json{"127.0.0.78:53"}));
  if (!can_bind) GTEST_SKIP() << "cannot bind port 53 on loopback: only the re-read was checked";
  dns.on_query(kGuest, 5001, make_query(kGuestId));
  ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 2; }, 2 * kSeconds));
  EXPECT_EQ(answer_of(io.sent[1]).dns.back(), 20);
  EXPECT_EQ(b.udp_ids.size(), 1u);
}

TEST(NatDns, EmptyResolvConfFallsBackToLocalhost) {
  EventLoop loop;
  TempResolvConf rc;
  rc.write("search example\n");
  NatConfig cfg;
  cfg.resolv_conf = rc.path();
  FakeGuestIo io(loop, cfg);
  DnsForwarder dns(io);
  EXPECT_EQ(dns.status()["upstreams"], (nlohmann::json{"127.0.0.1:53"}));
}

}  // namespace
}  // namespace vnet::nat
