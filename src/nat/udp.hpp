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
  void on_datagram(const wire::IpAddr& src, std::uint16_t sport, const wire::IpAddr& dst, std::uint16_t dport,
                   const SockAddr& target, wire::Bytes payload);
  // True when the guest's datagram src:sport -> dst:dport belongs to a flow
  // (a reply of a port-forwarded client, or an open outgoing flow): the
  // gateway asks before its forwarding policy, which only judges new flows.
  bool has_flow(const wire::IpAddr& src, std::uint16_t sport, const wire::IpAddr& dst, std::uint16_t dport) const;
  // UDP port forwarding: a datagram a host client sent to a forwarded host
  // socket host_fd (owned by the port-forward code). It goes to
  // guest:guest_port from the client's address (a client on 127.0.0.0/8, or
  // one the guest cannot address, appears as the gateway); the guest's
  // replies leave through host_fd to that client. Idle flows expire as others.
  void inbound(int host_fd, const SockAddr& client, const wire::IpAddr& guest, std::uint16_t guest_port,
               wire::Bytes payload);
  // The port-forward code calls this before closing host_fd, so no flow
  // keeps writing to a closed (or reused) descriptor.
  void forget_host_fd(int host_fd);
  // Closes flows idle at `now` (monotonic); the sweep timer calls it, tests
  // may call it with a time in the future.
  void expire_idle(Nanos now);
  nlohmann::json status() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
