// ICMP and ICMPv6 echo from guests to the outside, through unprivileged
// ICMP datagram sockets (net.ipv4.ping_group_range, which covers both).
#pragma once

#include <memory>

#include "nat/guest_io.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"

namespace vnet::nat {

class IcmpTranslator {
 public:
  explicit IcmpTranslator(GuestIo& io);
  ~IcmpTranslator();
  IcmpTranslator(const IcmpTranslator&) = delete;
  IcmpTranslator& operator=(const IcmpTranslator&) = delete;

  // An ICMP packet from a guest to an address outside the network; `target`
  // is where the host socket sends it (the host's loopback for the gateway).
  void on_packet(const wire::Ipv4Packet& ip, wire::Ipv4Addr target);
  // The same for an ICMPv6 message `l4` (past any extension headers).
  void on_packet6(const wire::Ipv6Packet& ip, wire::Bytes l4, const wire::Ipv6Addr& target);
  // Closes echo sockets idle at `now` (monotonic); the sweep timer calls it,
  // tests may call it with a time in the future.
  void expire_idle(Nanos now);
  // Open echo mappings, for status and tests.
  std::size_t size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
