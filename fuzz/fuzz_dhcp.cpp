// DHCP messages from guests: the parser must stay in bounds on any input,
// and the server fed with it must never crash, must answer only with
// well-formed BOOTREPLYs, and must keep its lease table within max_leases.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_sink.hpp"
#include "nat/dhcp.hpp"
#include "support/fake_guest_io.hpp"
#include "wire/dhcp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

// The fake guest side, checking every reply: a BOOTREPLY from port 67 to
// port 68, padded to 300 bytes. No guest MAC is known.
struct DhcpGuestIo : nat::testing::FakeGuestIo {
  DhcpGuestIo() {
    default_mac.reset();
    record = false;
    on_sent = [](const nat::testing::SentPacket& s) {
      check(s.proto == IpProtocol::Udp && s.sport == 67 && s.dport == 68 && s.payload.size() >= 300);
      auto p = DhcpPacket::parse(s.payload);
      check(p.ok() && p->op() == DhcpPacket::kBootReply && p->message_type().has_value());
    };
  }
};

void exercise_view(const DhcpPacket& p) {
  sink(p.xid() + p.secs() + p.flags() + p.hlen() + p.overload());
  sink(p.sname().size() + p.file().size() + p.chaddr().size());
  sink(p.client_id().size() + p.hostname().size() + p.param_request_list().size());
  if (auto t = p.message_type()) sink(static_cast<int>(*t));
  if (auto a = p.requested_ip()) sink(a->to_u32());
  if (auto l = p.lease_time()) sink(*l);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  if (auto p = DhcpPacket::parse(in)) exercise_view(*p);

  // A small network, so that exhaustion and reclaiming are reachable too.
  static DhcpGuestIo io;
  static nat::DhcpServer* server = nullptr;
  static int runs = 0;
  if (!server || ++runs % 512 == 0) {
    delete server;
    io.cfg.net = Ipv4Cidr{{{10, 0, 2, 0}}, 28};
    io.cfg.dhcp_start = Ipv4Addr{{10, 0, 2, 4}};
    io.cfg.max_leases = 8;
    io.cfg.domain = "vnet.test";
    io.cfg.bootfile = "pxelinux.0";
    server = new nat::DhcpServer(io);
    server->reserve(MacAddr{{2, 0, 0, 0, 0, 1}}, Ipv4Addr{{10, 0, 2, 9}});
  }
  // Mostly from the MAC the message names (as a real guest), sometimes from
  // another one (a guest speaking for someone else), on one of a few ports.
  MacAddr src{{2, 0, 0, 0, 0, 2}};
  auto parsed = DhcpPacket::parse(in);
  if (parsed && parsed->is_ethernet() && (size % 8) != 0) src = parsed->client_mac();
  server->on_message(src, in, static_cast<PortId>(size % 3));
  const auto st = server->status();
  std::size_t live = 0;
  for (const auto& l : st) live += l["state"] != "declined";
  check(live <= io.cfg.max_leases);
  return 0;
}
