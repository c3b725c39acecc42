// TftpServer driven through the fake guest side, which records what it sends, over a
// real temporary directory and the real event loop (for retransmits).
#include "nat/tftp.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/fake_guest_io.hpp"
#include "wire/tftp.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
namespace fs = std::filesystem;

const Ipv4Addr kGuest{{10, 0, 2, 15}};
const Ipv4Addr kGateway{{10, 0, 2, 2}};
constexpr std::uint16_t kGuestPort = 40000;

TftpPacket packet_of(const testing::SentPacket& s) { return *TftpPacket::parse(s.payload); }

// No guest MAC is known: TFTP answers to the address it was asked from.
struct TftpGuestIo : testing::FakeGuestIo {
  TftpGuestIo() { default_mac.reset(); }
};

class TftpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vnet-tftp-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base = tmpl;
    root = base / "root";
    fs::create_directories(root / "sub");
    write(base / "secret", "outside");
    fs::create_symlink(base / "secret", root / "escape");
    fs::create_directory(root / "adir");
    io.cfg.tftp_dir = root.string();
  }
  void TearDown() override { fs::remove_all(base); }

  static void write(const fs::path& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }

  static std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    return s;
  }

  bool rrq(TftpServer& srv, const std::string& name, std::vector<TftpOption> opts = {},
           TftpOpcode op = TftpOpcode::Rrq, const std::string& mode = "octet") {
    std::uint8_t buf[512];
    std::size_t n = tftp_emit_request(buf, op, name, mode, opts.data(), opts.size());
    EXPECT_GT(n, 0u);
    return srv.on_datagram(kGuest, kGuestPort, 69, {buf, n});
  }
  static bool ack(TftpServer& srv, std::uint16_t port, std::uint16_t block) {
    std::uint8_t buf[4];
    tftp_emit_ack(buf, block);
    return srv.on_datagram(kGuest, kGuestPort, port, buf);
  }

  // Acks every DATA until the short block; returns the file received.
  std::string drain(TftpServer& srv, std::size_t blksize) {
    std::string got;
    for (std::size_t guard = 0; guard < 100000; ++guard) {
      const testing::SentPacket& s = io.sent.back();
      auto p = packet_of(s);
      EXPECT_EQ(p.opcode(), TftpOpcode::Data);
      if (p.opcode() != TftpOpcode::Data) break;
      got.append(reinterpret_cast<const char*>(p.data().data()), p.data().size());
      const bool last = p.data().size() < blksize;
      const std::size_t before = io.sent.size();
      EXPECT_TRUE(ack(srv, s.sport, p.block()));
      if (last) {
        EXPECT_EQ(io.sent.size(), before);
        break;
      }
      EXPECT_EQ(io.sent.size(), before + 1);
    }
    return got;
  }

  void expect_error(TftpErrorCode code) {
    ASSERT_FALSE(io.sent.empty());
    auto p = packet_of(io.sent.back());
    ASSERT_EQ(p.opcode(), TftpOpcode::Error);
    EXPECT_EQ(p.error_code(), static_cast<std::uint16_t>(code)) << p.error_message();
  }

  fs::path base, root;
  TftpGuestIo io;
};

TEST_F(TftpTest, DisabledWithoutDirectory) {
  io.cfg.tftp_dir.clear();
  TftpServer srv(io);
  EXPECT_FALSE(rrq(srv, "x"));
  EXPECT_TRUE(io.sent.empty());
}

TEST_F(TftpTest, OtherPortsAreNotTftps) {
  TftpServer srv(io);
  std::uint8_t a[4];
  tftp_emit_ack(a, 1);
  EXPECT_FALSE(srv.on_datagram(kGuest, kGuestPort, 50000, a));
  EXPECT_FALSE(srv.on_datagram(kGuest, kGuestPort, 53, a));
}

TEST_F(TftpTest, ReadsWholeFileInDefaultBlocks) {
  const std::string data = pattern(512 * 3 + 100);
  write(root / "sub" / "file.bin", data);
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "/sub/file.bin"));
  ASSERT_EQ(io.sent.size(), 1u);
  const testing::SentPacket first = io.sent[0];  // a copy: later sends grow the vector
  EXPECT_EQ(first.src, kGateway);
  EXPECT_GE(first.sport, 50000);
  EXPECT_EQ(first.dst, kGuest);
  EXPECT_EQ(first.dport, kGuestPort);
  EXPECT_EQ(packet_of(first).block(), 1);
  EXPECT_EQ(drain(srv, 512), data);
  EXPECT_EQ(io.ctr.tftp_transfers, 1u);
  // The transfer is gone: its port is no longer TFTP's.
  EXPECT_FALSE(ack(srv, first.sport, 4));
}

TEST_F(TftpTest, ExactMultipleEndsWithEmptyBlock) {
  const std::string data = pattern(1024);
  write(root / "even", data);
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "even"));
  EXPECT_EQ(drain(srv, 512), data);
  EXPECT_EQ(packet_of(io.sent.back()).data().size(), 0u);
  EXPECT_EQ(packet_of(io.sent.back()).block(), 3);
}

TEST_F(TftpTest, OptionsGetOack) {
  const std::string data = pattern(5000);
  write(root / "opt", data);
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "opt", {{"blksize", "1024"}, {"tsize", "0"}, {"foo", "bar"}}));
  ASSERT_EQ(io.sent.size(), 1u);
  auto p = packet_of(io.sent[0]);
  ASSERT_EQ(p.opcode(), TftpOpcode::Oack);
  auto s = p.strings();
  EXPECT_EQ(std::string(s.begin(), s.end()), std::string("blksize\0001024\0tsize\0005000\0", 24));
  ASSERT_TRUE(ack(srv, io.sent[0].sport, 0));
  ASSERT_EQ(io.sent.size(), 2u);
  EXPECT_EQ(packet_of(io.sent[1]).data().size(), 1024u);
  EXPECT_EQ(drain(srv, 1024), data);
}

TEST_F(TftpTest, BlksizeCappedByMtu) {
  write(root / "big", pattern(4000));
  io.cfg.mtu = 1000;
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "big", {{"blksize", "65464"}}));
  auto s = packet_of(io.sent[0]).strings();
  EXPECT_EQ(std::string(s.begin(), s.end()), std::string("blksize\000968\0", 12));
  ack(srv, io.sent[0].sport, 0);
  EXPECT_EQ(packet_of(io.sent.back()).data().size(), 968u);
}

TEST_F(TftpTest, BlockNumberWrapsAround) {
  // 65536 blocks of 8 bytes + a short one: block numbers pass 65535 -> 0.
  const std::string data = pattern(8 * 65536 + 3);
  write(root / "wrap", data);
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "wrap", {{"blksize", "8"}}));
  ack(srv, io.sent[0].sport, 0);
  io.sent.erase(io.sent.begin());
  EXPECT_EQ(drain(srv, 8), data);
  EXPECT_EQ(packet_of(io.sent.back()).block(), 1);  // block 65537 on the wire
}

TEST_F(TftpTest, DuplicateAckIsIgnored) {
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  rrq(srv, "f");
  const std::uint16_t port = io.sent[0].sport;
  ack(srv, port, 1);
  ASSERT_EQ(io.sent.size(), 2u);
  ack(srv, port, 1);  // old ACK: no resend (Sorcerer's Apprentice)
  EXPECT_EQ(io.sent.size(), 2u);
}

TEST_F(TftpTest, RetransmitsOnMissingAck) {
  write(root / "f", pattern(700));
  TftpServer srv(io);
  rrq(srv, "f");
  ASSERT_EQ(io.sent.size(), 1u);
  io.run_for(1300 * kMillis);
  ASSERT_EQ(io.sent.size(), 2u);
  EXPECT_EQ(io.sent[1].payload, io.sent[0].payload);
  // A repeated RRQ does not start a second transfer.
  rrq(srv, "f");
  EXPECT_EQ(io.sent.size(), 2u);
}

TEST_F(TftpTest, DotDotRefused) {
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "../secret"));
  expect_error(TftpErrorCode::AccessViolation);
  ASSERT_TRUE(rrq(srv, "sub/../../secret"));
  expect_error(TftpErrorCode::AccessViolation);
  EXPECT_EQ(io.ctr.tftp_refused, 2u);
  EXPECT_EQ(io.ctr.tftp_transfers, 0u);
}

TEST_F(TftpTest, SymlinkOutsideRefused) {
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "escape"));
  expect_error(TftpErrorCode::AccessViolation);
}

TEST_F(TftpTest, MissingFileNotFound) {
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "nope"));
  expect_error(TftpErrorCode::FileNotFound);
  ASSERT_TRUE(rrq(srv, "/"));
  expect_error(TftpErrorCode::FileNotFound);
}

TEST_F(TftpTest, DirectoryRefused) {
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "adir"));
  expect_error(TftpErrorCode::AccessViolation);
}

TEST_F(TftpTest, WriteRequestRefused) {
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "new", {}, TftpOpcode::Wrq));
  expect_error(TftpErrorCode::AccessViolation);
  EXPECT_FALSE(fs::exists(root / "new"));
}

TEST_F(TftpTest, MailModeRefused) {
  write(root / "f", "x");
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "f", {}, TftpOpcode::Rrq, "mail"));
  expect_error(TftpErrorCode::IllegalOperation);
}

TEST_F(TftpTest, NetasciiServedAsIs) {
  write(root / "t.txt", "a\nb\n");
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "t.txt", {}, TftpOpcode::Rrq, "NETASCII"));
  EXPECT_EQ(drain(srv, 512), "a\nb\n");
}

TEST_F(TftpTest, WrongTransferIdGetsError5) {
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  rrq(srv, "f");
  const std::uint16_t port = io.sent[0].sport;
  std::uint8_t a[4];
  tftp_emit_ack(a, 1);
  ASSERT_TRUE(srv.on_datagram(kGuest, kGuestPort + 1, port, a));
  expect_error(TftpErrorCode::UnknownTransferId);
  EXPECT_EQ(io.sent.back().dport, kGuestPort + 1);
  // The real transfer goes on.
  ack(srv, port, 1);
  EXPECT_EQ(packet_of(io.sent.back()).block(), 2);
}

TEST_F(TftpTest, MalformedCounted) {
  TftpServer srv(io);
  const std::uint8_t junk[] = {0, 1, 'x'};
  EXPECT_TRUE(srv.on_datagram(kGuest, kGuestPort, 69, junk));
  const std::uint8_t ack1[] = {0, 4, 0, 1};
  EXPECT_TRUE(srv.on_datagram(kGuest, kGuestPort, 69, ack1));
  EXPECT_EQ(io.ctr.drop_malformed, 2u);
  EXPECT_TRUE(io.sent.empty());
}

TEST_F(TftpTest, ConcurrentTransferLimit) {
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  std::uint8_t buf[64];
  std::size_t n = tftp_emit_request(buf, TftpOpcode::Rrq, "f", "octet", nullptr, 0);
  // 16 guests (switch ports) with 4 transfers each fill the 64 slots.
  for (std::uint16_t i = 0; i < 64; ++i)
    ASSERT_TRUE(srv.on_datagram(kGuest, 1000 + i, 69, {buf, n}, /*port=*/1 + i / 4));
  EXPECT_EQ(io.ctr.tftp_transfers, 64u);
  ASSERT_TRUE(srv.on_datagram(kGuest, 2000, 69, {buf, n}, 100));
  expect_error(TftpErrorCode::NotDefined);
  EXPECT_EQ(io.ctr.tftp_refused, 1u);
}

TEST_F(TftpTest, PerGuestTransferLimit) {
  // One guest cannot take every slot: its fifth transfer is refused while
  // another guest still gets one.
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  std::uint8_t buf[64];
  std::size_t n = tftp_emit_request(buf, TftpOpcode::Rrq, "f", "octet", nullptr, 0);
  for (std::uint16_t i = 0; i < TftpServer::kMaxTransfersPerGuest; ++i)
    ASSERT_TRUE(srv.on_datagram(kGuest, 1000 + i, 69, {buf, n}, 7));
  ASSERT_TRUE(srv.on_datagram(kGuest, 1100, 69, {buf, n}, 7));
  expect_error(TftpErrorCode::NotDefined);
  EXPECT_EQ(io.ctr.tftp_guest_limit, 1u);
  const std::size_t before = io.sent.size();
  ASSERT_TRUE(srv.on_datagram(Ipv4Addr{{10, 0, 2, 16}}, 1000, 69, {buf, n}, 8));
  ASSERT_EQ(io.sent.size(), before + 1);
  EXPECT_EQ(packet_of(io.sent.back()).opcode(), TftpOpcode::Data);
  EXPECT_EQ(io.ctr.tftp_transfers, TftpServer::kMaxTransfersPerGuest + 1);
}

TEST_F(TftpTest, LongTimeoutIsNotAccepted) {
  // timeout=255 would hold a slot for 25 min: the option is left out of the
  // OACK (RFC 2349 allows no other value) and the 1 s default applies.
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "f", {{"timeout", "255"}, {"blksize", "1024"}}));
  auto s = packet_of(io.sent[0]).strings();
  EXPECT_EQ(std::string(s.begin(), s.end()), std::string("blksize\0001024\0", 13));
}

TEST_F(TftpTest, ShortTimeoutIsAccepted) {
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  ASSERT_TRUE(rrq(srv, "f", {{"timeout", "5"}}));
  auto s = packet_of(io.sent[0]).strings();
  EXPECT_EQ(std::string(s.begin(), s.end()), std::string("timeout\0005\0", 10));
}

TEST_F(TftpTest, GuestErrorAbortsTransfer) {
  write(root / "f", pattern(2000));
  TftpServer srv(io);
  rrq(srv, "f");
  const std::uint16_t port = io.sent[0].sport;
  std::uint8_t e[32];
  std::size_t n = tftp_emit_error(e, TftpErrorCode::DiskFull, "full");
  EXPECT_TRUE(srv.on_datagram(kGuest, kGuestPort, port, {e, n}));
  EXPECT_FALSE(ack(srv, port, 1));
}

}  // namespace
}  // namespace vnet::nat
