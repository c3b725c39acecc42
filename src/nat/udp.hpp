// UDP translation: one host socket per guest flow, with idle timeouts.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "core/fd.hpp"
#include "core/sockaddr.hpp"
#include "nat/guest_io.hpp"

namespace vnet::nat {

class UdpTranslator {
 public:
  explicit UdpTranslator(GuestIo& io);
  ~UdpTranslator();
  UdpTranslator(const UdpTranslator&) = delete;
  UdpTranslator& operator=(const UdpTranslator&) = delete;

  // A datagram from a guest; `target` is where the host socket sends it
  // (dst itself, or the host's loopback when dst is the gateway).
  void on_datagram(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst, std::uint16_t dport,
                   const SockAddr& target, wire::Bytes payload);
  nlohmann::json status() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
