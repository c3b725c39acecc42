// DNS forwarder at the NAT network's DNS address.
#pragma once

#include <memory>

#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "core/sockaddr.hpp"
#include "nat/guest_io.hpp"

namespace vnet::nat {

class DnsForwarder {
 public:
  explicit DnsForwarder(GuestIo& io);
  ~DnsForwarder();
  DnsForwarder(const DnsForwarder&) = delete;
  DnsForwarder& operator=(const DnsForwarder&) = delete;

  // A query a guest sent over UDP to the DNS address (IPv4 or IPv6), port 53.
  void on_query(const wire::IpAddr& guest, std::uint16_t guest_port, wire::Bytes query);
  // Where a guest's DNS-over-TCP connection to the DNS address goes.
  std::optional<SockAddr> tcp_upstream() const;
  nlohmann::json status() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
