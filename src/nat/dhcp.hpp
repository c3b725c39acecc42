// DHCPv4 server for a NAT network (RFC 2131/2132).
#pragma once

#include <memory>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "nat/guest_io.hpp"

namespace vnet::nat {

class DhcpServer {
 public:
  explicit DhcpServer(GuestIo& io);
  ~DhcpServer();
  DhcpServer(const DhcpServer&) = delete;
  DhcpServer& operator=(const DhcpServer&) = delete;

  // A BOOTP/DHCP message a guest sent to UDP port 67.
  void on_message(const wire::MacAddr& src_mac, wire::Bytes payload);
  // Static reservation: this MAC always gets this address.
  void reserve(const wire::MacAddr& mac, wire::Ipv4Addr addr);
  // The address leased to a MAC, if any (port forwards default to the first lease).
  std::optional<wire::Ipv4Addr> lease_of(const wire::MacAddr& mac) const;
  nlohmann::json status() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
