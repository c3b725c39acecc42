// ICMP echo from guests to the outside, through unprivileged ICMP datagram
// sockets (net.ipv4.ping_group_range).
#pragma once

#include <memory>

#include "nat/guest_io.hpp"
#include "wire/ipv4.hpp"

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
