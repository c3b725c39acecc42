// The TCP translator fed hostile segments: a valid IPv4 header is built
// around each fuzzed TCP segment (checksum filled unless the input asks not
// to), new connections go to 127.0.0.1:1 where nothing listens, and the event
// loop runs briefly so connect failures, timers and RSTs are exercised.
// Input: a sequence of records [flags byte][len byte][len bytes of segment].
// flags bit 0: keep the fuzzed checksum; bit 1: guest MAC unknown;
// bit 2: policy refuses (empty target).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/event_loop.hpp"
#include "fuzz_sink.hpp"
#include "nat/tcp.hpp"
#include "support/fake_guest_io.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

SockAddr closed_port() { return SockAddr::from_ipv4(Ipv4Addr{{127, 0, 0, 1}}, 1); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nat::testing::FakeGuestIo io;
  io.record = false;
  io.on_sent = [](const nat::testing::SentPacket& s) { check(s.proto == IpProtocol::Tcp && s.l4.size() >= 20); };
  io.cfg.max_flows = 8;
  const Ipv4Addr guest{{10, 0, 2, 15}}, gw{{10, 0, 2, 2}};
  {
    nat::TcpTranslator tcp(io);
    std::uint8_t pkt[20 + 255];
    std::size_t at = 0;
    int records = 0;
    while (at + 2 <= size && records++ < 64) {
      const std::uint8_t flags = data[at];
      const std::size_t len = std::min<std::size_t>(data[at + 1], size - at - 2);
      std::memcpy(pkt + 20, data + at + 2, len);
      at += 2 + len;
      if (len >= 18 && !(flags & 1)) {
        store_be16(MutBytes(pkt + 20, len), 16, 0);
        store_be16(MutBytes(pkt + 20, len), 16,
                   internet_checksum(Bytes(pkt + 20, len), pseudo_header_v4(guest, gw, 6, static_cast<std::uint16_t>(len))));
      }
      io.mac_known = !(flags & 2);
      tcp.on_segment(guest, gw, Bytes(pkt + 20, len), (flags & 4) ? SockAddr{} : closed_port());
      if (flags & 8) {
        Timer stop(io.loop(), [&] { io.loop().stop(); });
        stop.arm_in(200 * kMicros);
        io.loop().run();
      }
    }
    sink(tcp.status().size());
  }
  return 0;
}
