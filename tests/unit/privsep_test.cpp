// The privileged helper's request format and rules: every malformed request
// is refused by the parser, every path outside the allowed set by the rules,
// and the file-system checks (symlinks, hard links, live sockets) hold.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "privsep/helper.hpp"
#include "privsep/kernel_net.hpp"
#include "privsep/request.hpp"

namespace vnet::privsep {
namespace {

std::vector<std::uint8_t> raw(std::uint8_t op, std::uint8_t type, std::uint16_t reserved, const std::string& a,
                              const std::string& b, int len_a_delta = 0, int len_b_delta = 0) {
  Request r{static_cast<Op>(op), static_cast<SocketType>(type), a, b};
  auto bytes = encode(r);
  bytes[1] = type;
  std::memcpy(&bytes[2], &reserved, 2);
  const auto la = static_cast<std::uint16_t>(static_cast<int>(a.size()) + len_a_delta);
  const auto lb = static_cast<std::uint16_t>(static_cast<int>(b.size()) + len_b_delta);
  std::memcpy(&bytes[4], &la, 2);
  std::memcpy(&bytes[6], &lb, 2);
  return bytes;
}

bool refused(const std::vector<std::uint8_t>& bytes) {
  std::string why;
  const bool bad = !parse_request(bytes, why).has_value();
  if (bad) {
    EXPECT_FALSE(why.empty());
  }
  return bad;
}

TEST(PrivsepRequest, RoundTripsEachOperation) {
  const Request requests[] = {{Op::OpenTap, SocketType::None, "tap0", "ns-1"},
                              {Op::OpenTap, SocketType::None, "vt_x.1", ""},
                              {Op::BindUnix, SocketType::Stream, "/run/vnet/a.sock", ""},
                              {Op::BindUnix, SocketType::Dgram, "/run/vnet/d", ""},
                              {Op::CreateFile, SocketType::None, "/run/vnet/cap.pcap", ""},
                              {Op::ConnectUnix, SocketType::Stream, "/run/vnet/qemu.sock", ""},
                              {Op::BindInet, SocketType::Stream, "0.0.0.0", "80"},
                              {Op::BindInet, SocketType::Dgram, "::1", "1023"},
                              {Op::OpenDir, SocketType::None, "/srv/tftp", ""},
                              {Op::ConnectDgram, SocketType::Dgram, "/run/vnet/qemu.dgram", ""},
                              {Op::Cleanup, SocketType::None, "", ""},
                              {Op::OpenPacket, SocketType::None, "eth1", ""},
                              {Op::KernelNatUp, SocketType::None, "vn-kn", "10.0.2.1/24"},
                              {Op::KernelNatUp, SocketType::None, "vn-kn", "10.0.2.1/24 eth0"},
                              {Op::KernelNatDown, SocketType::None, "vn-kn", ""},
                              {Op::BridgeMember, SocketType::None, "vn-kn", "vn-kn-0"},
                              {Op::BridgeUnmember, SocketType::None, "vn-kn", "veth1"},
                              {Op::SetAddress, SocketType::None, "vn-ho", "192.168.56.1/24"}};
  for (const auto& r : requests) {
    std::string why;
    auto parsed = parse_request(encode(r), why);
    ASSERT_TRUE(parsed) << why;
    EXPECT_EQ(parsed->op, r.op);
    EXPECT_EQ(parsed->socket_type, r.socket_type);
    EXPECT_EQ(parsed->a, r.a);
    EXPECT_EQ(parsed->b, r.b);
  }
}

TEST(PrivsepRequest, ShortRequest) {
  for (std::size_t n = 0; n < kHeaderLen; ++n) EXPECT_TRUE(refused(std::vector<std::uint8_t>(n, 0)));
}

TEST(PrivsepRequest, OversizeRequest) {
  auto bytes = encode(Request{Op::CreateFile, SocketType::None, "/" + std::string(5000, 'a'), ""});
  EXPECT_TRUE(refused(bytes));
}

TEST(PrivsepRequest, ReservedBitsSet) { EXPECT_TRUE(refused(raw(4, 0, 1, "", ""))); }

TEST(PrivsepRequest, LengthsThatDoNotAddUp) {
  EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", "", +1)));
  EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", "", -1)));
  EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", "ns", 0, +40000)));
  EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", "ns", -40000, 0)));
  auto trailing = encode(Request{Op::Cleanup, SocketType::None, "", ""});
  trailing.push_back('x');
  EXPECT_TRUE(refused(trailing));
}

TEST(PrivsepRequest, UnknownOperation) {
  for (std::uint8_t op : {0, 7, 15, 0x7f, 0xff}) EXPECT_TRUE(refused(raw(op, 0, 0, "", "")));
}

TEST(PrivsepRequest, BadKernelNetworkRequests) {
  // Addresses: IPv4 with a prefix of 1 to 30, nothing else.
  for (const char* addr : {"", "10.0.2.1", "10.0.2.1/", "10.0.2.1/0", "10.0.2.1/31", "10.0.2.1/024", "10.0.2.1/2x",
                           "fec0::1/64", "10.0.2/24", "10.0.2.1/24 ", "10.0.2.1/24 eth0 x", "10.0.2.1/245"}) {
    EXPECT_TRUE(refused(raw(10, 0, 0, "vn-kn", addr))) << addr;
    EXPECT_TRUE(refused(raw(14, 0, 0, "vn-ho", addr))) << addr;
  }
  EXPECT_TRUE(refused(raw(10, 0, 0, "vn-kn", "10.0.2.1/24 a/b")));        // uplink name
  EXPECT_TRUE(refused(raw(11, 0, 0, "vn-kn", "x")));                      // down takes no second field
  EXPECT_TRUE(refused(raw(12, 0, 0, "vn-kn", "")));                       // member without interface
  EXPECT_TRUE(refused(raw(13, 0, 0, "vn/kn", "tap0")));
  EXPECT_TRUE(refused(raw(9, 1, 0, "eth0", "")));                         // socket type on a packet socket
  EXPECT_TRUE(refused(raw(9, 0, 0, "eth0", "../x")));
  for (std::uint8_t op = 9; op <= 14; ++op) EXPECT_TRUE(refused(raw(op, 2, 0, "vn-a", "10.0.2.1/24"))) << int(op);
}

TEST(PrivsepRequest, BadSocketType) {
  EXPECT_TRUE(refused(raw(2, 3, 0, "/run/vnet/a", "")));
  EXPECT_TRUE(refused(raw(2, 0, 0, "/run/vnet/a", "")));   // bind without a type
  EXPECT_TRUE(refused(raw(1, 1, 0, "tap0", "")));          // type on a TAP
  EXPECT_TRUE(refused(raw(3, 2, 0, "/run/vnet/x", "")));   // type on a file
  EXPECT_TRUE(refused(raw(4, 1, 0, "", "")));              // type on clean-up
  EXPECT_TRUE(refused(raw(5, 0, 0, "/run/vnet/q", "")));   // connect without a type
  EXPECT_TRUE(refused(raw(5, 2, 0, "/run/vnet/q", "")));   // connect is stream only
}

TEST(PrivsepRequest, NulByteInAField) {
  EXPECT_TRUE(refused(raw(1, 0, 0, std::string("tap\0x", 5), "")));
  EXPECT_TRUE(refused(raw(3, 0, 0, std::string("/run/vnet/a\0/etc/passwd", 24), "")));
  EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", std::string("n\0", 2))));
}

TEST(PrivsepRequest, BadInterfaceNames) {
  for (const char* name : {"", "sixteen-chars-xx", "a/b", "..", ".", "tap 0", "tap0\n", "t\xc3\xa9"})
    EXPECT_TRUE(refused(raw(1, 0, 0, name, ""))) << name;
}

TEST(PrivsepRequest, BadNamespaceNames) {
  const std::string too_long(65, 'n');
  for (const std::string& name : {std::string(".."), std::string("."), std::string("a/b"),
                                  std::string("../../proc/1/ns/net"), std::string("sp ace"), too_long})
    EXPECT_TRUE(refused(raw(1, 0, 0, "tap0", name))) << name;
}

TEST(PrivsepRequest, BadPaths) {
  for (const char* path : {"relative.sock", "/", "/run/vnet/", "/run/vnet/../etc/x", "/run/./vnet/x", "/run//vnet/x",
                           "", "/run/vnet/.."}) {
    EXPECT_TRUE(refused(raw(2, 1, 0, path, ""))) << path;
    EXPECT_TRUE(refused(raw(3, 0, 0, path, ""))) << path;
    EXPECT_TRUE(refused(raw(5, 1, 0, path, ""))) << path;
  }
  EXPECT_TRUE(refused(raw(2, 1, 0, "/" + std::string(kMaxUnixPath, 'a'), "")));  // longer than sun_path
  EXPECT_TRUE(refused(raw(2, 1, 0, "/run/vnet/a", "extra")));
  EXPECT_TRUE(refused(raw(3, 0, 0, "/run/vnet/a", "extra")));
  EXPECT_TRUE(refused(raw(4, 0, 0, "/run/vnet/a", "")));
}

TEST(PrivsepRequest, BadInetBinds) {
  for (const char* port : {"", "0", "1024", "65535", "080", "+80", "-1", "8O", "99999", " 80"})
    EXPECT_TRUE(refused(raw(6, 1, 0, "127.0.0.1", port))) << port;
  for (const char* addr : {"", "localhost", "127.0.0.1:80", "1.2.3", "::g", "[::1]", "0.0.0.0 "})
    EXPECT_TRUE(refused(raw(6, 1, 0, addr, "80"))) << addr;
  EXPECT_TRUE(refused(raw(6, 0, 0, "127.0.0.1", "80")));  // no socket type
}

TEST(PrivsepReply, RoundTripAndMalformed) {
  auto parsed = parse_reply(encode(Reply{false, EACCES, "no"}));
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->ok);
  EXPECT_EQ(parsed->error, EACCES);
  EXPECT_EQ(parsed->message, "no");
  EXPECT_FALSE(parse_reply(std::vector<std::uint8_t>(7, 0)));
  auto bad_flag = encode(Reply{true, 0, ""});
  bad_flag[0] = 2;
  EXPECT_FALSE(parse_reply(bad_flag));
}

TEST(PrivsepPolicy, PathsInsideTheRunDirOrAllowedDirsOnly) {
  const auto policy = make_policy("/run/vnet/", {"/srv/vm"});
  EXPECT_FALSE(refuse_path(policy, "/run/vnet/default.sock"));
  EXPECT_FALSE(refuse_path(policy, "/run/vnet/sub/x.pcap"));
  EXPECT_FALSE(refuse_path(policy, "/srv/vm/a.sock"));
  EXPECT_TRUE(refuse_path(policy, "/run/vnetx/a.sock"));  // a name that only starts like the run dir
  EXPECT_TRUE(refuse_path(policy, "/run/vnet"));
  EXPECT_TRUE(refuse_path(policy, "/etc/shadow"));
  EXPECT_TRUE(refuse_path(policy, "/run/vnet/../../etc/shadow"));
  EXPECT_TRUE(refuse_path(policy, "/srv/vmx/a"));
  EXPECT_TRUE(refuse_path(policy, "x.pcap"));
}

class PrivsepFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/privsep-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    policy_ = make_policy(dir_, {});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Reply run(const Request& r, UniqueFd& fd) { return handle_request(policy_, r, fd); }

  std::string dir_;
  HelperPolicy policy_;
};

TEST_F(PrivsepFiles, CreatesACaptureFileInTheRunDir) {
  UniqueFd fd;
  auto reply = run({Op::CreateFile, SocketType::None, dir_ + "/cap.pcap", ""}, fd);
  ASSERT_TRUE(reply.ok) << reply.message;
  EXPECT_EQ(::write(fd.get(), "x", 1), 1);
}

TEST_F(PrivsepFiles, RefusesAPathOutsideItsRules) {
  UniqueFd fd;
  auto reply = run({Op::CreateFile, SocketType::None, "/tmp/privsep-not-allowed.pcap", ""}, fd);
  EXPECT_FALSE(reply.ok);
  EXPECT_NE(reply.message.find("--allow-path"), std::string::npos);
  EXPECT_FALSE(fd);
  EXPECT_FALSE(std::filesystem::exists("/tmp/privsep-not-allowed.pcap"));
}

TEST_F(PrivsepFiles, DoesNotFollowASymlinkedFile) {
  const std::string target = dir_ + "/target";
  std::ofstream(target) << "keep";
  std::filesystem::create_symlink(target, dir_ + "/link.pcap");
  UniqueFd fd;
  EXPECT_FALSE(run({Op::CreateFile, SocketType::None, dir_ + "/link.pcap", ""}, fd).ok);
  EXPECT_EQ(std::filesystem::file_size(target), 4u);
}

TEST_F(PrivsepFiles, DoesNotTruncateAHardLink) {
  const std::string target = dir_ + "/target";
  std::ofstream(target) << "keep";
  ASSERT_EQ(::link(target.c_str(), (dir_ + "/hard.pcap").c_str()), 0);
  UniqueFd fd;
  EXPECT_FALSE(run({Op::CreateFile, SocketType::None, dir_ + "/hard.pcap", ""}, fd).ok);
  EXPECT_EQ(std::filesystem::file_size(target), 4u);
}

TEST_F(PrivsepFiles, DoesNotFollowASymlinkedDirectory) {
  std::filesystem::create_directory(dir_ + "/real");
  std::filesystem::create_directory_symlink(dir_ + "/real", dir_ + "/via");
  UniqueFd fd;
  EXPECT_FALSE(run({Op::CreateFile, SocketType::None, dir_ + "/via/x.pcap", ""}, fd).ok);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/real/x.pcap"));
}

TEST_F(PrivsepFiles, BindsReplacesStaleAndKeepsLiveSockets) {
  UniqueFd first;
  const std::string path = dir_ + "/a.sock";
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Stream, path, ""}, first).ok);
  ASSERT_EQ(::listen(first.get(), 1), 0);
  UniqueFd second;
  auto live = run({Op::BindUnix, SocketType::Stream, path, ""}, second);
  EXPECT_FALSE(live.ok);
  EXPECT_NE(live.message.find("in use"), std::string::npos);
  first.reset();  // now stale
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Stream, path, ""}, second).ok);
  std::ofstream(dir_ + "/plain") << "x";
  UniqueFd third;
  EXPECT_FALSE(run({Op::BindUnix, SocketType::Stream, dir_ + "/plain", ""}, third).ok);
}

TEST_F(PrivsepFiles, ConnectsToALiveSocketOnly) {
  UniqueFd server;
  const std::string path = dir_ + "/q.sock";
  UniqueFd fd;
  EXPECT_FALSE(run({Op::ConnectUnix, SocketType::Stream, path, ""}, fd).ok);  // nothing there yet
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Stream, path, ""}, server).ok);
  ASSERT_EQ(::listen(server.get(), 1), 0);
  auto reply = run({Op::ConnectUnix, SocketType::Stream, path, ""}, fd);
  ASSERT_TRUE(reply.ok) << reply.message;
  EXPECT_EQ(::send(fd.get(), "x", 1, 0), 1);
  std::ofstream(dir_ + "/plain") << "x";
  EXPECT_FALSE(run({Op::ConnectUnix, SocketType::Stream, dir_ + "/plain", ""}, fd).ok);
}

TEST_F(PrivsepFiles, OpensADirectoryOnlyInsideItsRulesAndNeverThroughASymlink) {
  std::filesystem::create_directory(dir_ + "/tftp");
  std::ofstream(dir_ + "/tftp/boot") << "x";
  UniqueFd fd;
  auto reply = run({Op::OpenDir, SocketType::None, dir_ + "/tftp", ""}, fd);
  ASSERT_TRUE(reply.ok) << reply.message;
  struct stat st{};
  EXPECT_EQ(::fstatat(fd.get(), "boot", &st, 0), 0);  // the handle reaches files beneath it
  UniqueFd outside;
  EXPECT_FALSE(run({Op::OpenDir, SocketType::None, "/etc", ""}, outside).ok);
  EXPECT_FALSE(outside);
  std::filesystem::create_directory_symlink(dir_ + "/tftp", dir_ + "/via");
  UniqueFd via;
  EXPECT_FALSE(run({Op::OpenDir, SocketType::None, dir_ + "/via", ""}, via).ok);
  EXPECT_FALSE(via);
}

TEST_F(PrivsepFiles, ConnectsTheEnginesDatagramSocketItWasGiven) {
  UniqueFd peer;
  const std::string path = dir_ + "/qemu.dgram";
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Dgram, path, ""}, peer).ok);
  UniqueFd mine(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  UniqueFd none;
  const Request connect{Op::ConnectDgram, SocketType::Dgram, path, ""};
  auto reply = handle_request(policy_, connect, none, mine.get());
  ASSERT_TRUE(reply.ok) << reply.message;
  EXPECT_FALSE(none);
  EXPECT_EQ(::send(mine.get(), "x", 1, 0), 1);  // no address needed any more
  char got = 0;
  EXPECT_EQ(::recv(peer.get(), &got, 1, MSG_DONTWAIT), 1);
  // Without a socket, with a stream socket, outside the rules, or a
  // descriptor sent along with another request: refused.
  EXPECT_FALSE(handle_request(policy_, connect, none, -1).ok);
  UniqueFd stream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(handle_request(policy_, connect, none, stream.get()).ok);
  UniqueFd other(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(handle_request(policy_, {Op::ConnectDgram, SocketType::Dgram, "/tmp/x.dgram", ""}, none, other.get()).ok);
  EXPECT_FALSE(handle_request(policy_, {Op::OpenDir, SocketType::None, dir_, ""}, none, other.get()).ok);
}

TEST_F(PrivsepFiles, HandsOverOnlyInterfacesVnetMadeOrRootAllowed) {
  UniqueFd fd;
  // Checked before anything is opened: the host's own links stay out of reach.
  auto packet = run({Op::OpenPacket, SocketType::None, "eth0", ""}, fd);
  EXPECT_FALSE(packet.ok);
  EXPECT_NE(packet.message.find("--allow-if eth0"), std::string::npos) << packet.message;
  EXPECT_FALSE(run({Op::KernelNatUp, SocketType::None, "eth0", "10.0.2.1/24"}, fd).ok);
  EXPECT_FALSE(run({Op::KernelNatDown, SocketType::None, "docker0", ""}, fd).ok);
  EXPECT_FALSE(run({Op::SetAddress, SocketType::None, "eth0", "10.0.2.1/24"}, fd).ok);
  auto member = run({Op::BridgeMember, SocketType::None, "vn-kn", "eth0"}, fd);
  EXPECT_FALSE(member.ok);
  EXPECT_NE(member.message.find("--allow-if eth0"), std::string::npos) << member.message;
  EXPECT_FALSE(run({Op::BridgeMember, SocketType::None, "br0", "vn-kn-0"}, fd).ok);
  EXPECT_FALSE(fd.valid());
}

TEST(KernelNet, OwnedNamesAndRuleset) {
  EXPECT_TRUE(is_owned_ifname("vn-kn"));
  EXPECT_TRUE(is_owned_ifname("vn-kn-12"));
  EXPECT_FALSE(is_owned_ifname("vn-"));
  EXPECT_FALSE(is_owned_ifname("eth0"));
  EXPECT_FALSE(is_owned_ifname("xvn-kn"));
  EXPECT_FALSE(is_owned_ifname("vn-sixteen-chars"));
  EXPECT_EQ(nft_table_name("vn-kn.1"), "vnet_vn_kn_1");
  const std::string any = nft_ruleset("vn-kn", "10.0.2.0/24", "");
  EXPECT_NE(any.find("ip saddr 10.0.2.0/24 ip daddr != 10.0.2.0/24 oifname != \"vn-kn\" masquerade"), std::string::npos)
      << any;
  EXPECT_NE(any.find("oifname \"vn-kn\" ct state established,related accept"), std::string::npos);
  EXPECT_NE(any.find("oifname \"vn-kn\" drop"), std::string::npos);
  EXPECT_EQ(any.rfind("add table ip vnet_vn_kn\ndelete table ip vnet_vn_kn\n", 0), 0u) << any;
  const std::string one = nft_ruleset("vn-kn", "10.0.2.0/24", "eth0");
  EXPECT_NE(one.find("oifname \"eth0\" masquerade"), std::string::npos) << one;
}

TEST_F(PrivsepFiles, BindsOnlyTheLowPortsRootAllowed) {
  UniqueFd fd;
  auto reply = run({Op::BindInet, SocketType::Stream, "127.0.0.1", "81"}, fd);
  EXPECT_FALSE(reply.ok);
  EXPECT_NE(reply.message.find("--allow-port 81"), std::string::npos);
  EXPECT_FALSE(fd);
}

TEST_F(PrivsepFiles, CleanupRemovesSocketsAndPidFileOnly) {
  UniqueFd sock;
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Dgram, dir_ + "/d.sock", ""}, sock).ok);
  std::ofstream(dir_ + "/vnet.pid") << "1";
  std::ofstream(dir_ + "/vnet.log") << "log";
  UniqueFd none;
  ASSERT_TRUE(run({Op::Cleanup, SocketType::None, "", ""}, none).ok);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/d.sock"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/vnet.pid"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/vnet.log"));
}

TEST_F(PrivsepFiles, CleanupLeavesTheServiceManagersSocket) {
  UniqueFd mine, managers;
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Stream, dir_ + "/default.sock", ""}, mine).ok);
  ASSERT_TRUE(run({Op::BindUnix, SocketType::Stream, dir_ + "/control.sock", ""}, managers).ok);
  policy_.keep_on_cleanup = {"control.sock"};
  UniqueFd none;
  ASSERT_TRUE(run({Op::Cleanup, SocketType::None, "", ""}, none).ok);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/default.sock"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/control.sock")) << "socket activation: the manager keeps listening";
}

TEST_F(PrivsepFiles, BrokerTalksToAForkedHelper) {
  auto broker = start_helper(policy_);
  UniqueFd fd = broker->create_file(dir_ + "/via-helper.pcap");
  EXPECT_EQ(::write(fd.get(), "abc", 3), 3);
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/via-helper.pcap"), 3u);
  EXPECT_THROW(broker->create_file("/tmp/privsep-outside.pcap"), UserError);
  UniqueFd sock = broker->bind_unix(dir_ + "/b.sock", SocketType::Stream);
  EXPECT_EQ(::listen(sock.get(), 1), 0);
}

}  // namespace
}  // namespace vnet::privsep
