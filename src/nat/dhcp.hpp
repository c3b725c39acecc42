// DHCPv4 server for a NAT network (RFC 2131/2132).
#pragma once

#include <memory>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "fabric/port.hpp"
#include "nat/guest_io.hpp"

namespace vnet::nat {

class NeighTable;

class DhcpServer {
 public:
  // neigh (may be null in tests) learns every address leased or released.
  explicit DhcpServer(GuestIo& io, NeighTable* neigh = nullptr);
  ~DhcpServer();
  DhcpServer(const DhcpServer&) = delete;
  DhcpServer& operator=(const DhcpServer&) = delete;

  // A BOOTP/DHCP message a guest sent to UDP port 67 in a frame from
  // src_mac that entered the network on `port`.
  void on_message(const wire::MacAddr& src_mac, wire::Bytes payload, PortId port = 0);
  // Static reservation: this MAC always gets this address.
  void reserve(const wire::MacAddr& mac, wire::Ipv4Addr addr);
  // The address leased to a MAC, if any (port forwards default to the first lease).
  std::optional<wire::Ipv4Addr> lease_of(const wire::MacAddr& mac) const;
  nlohmann::json status() const;

  // Bound, unexpired leases as saved across a restart (control/state.hpp):
  // [{"key": hex client key, "mac", "ip", "hostname", "expires_unix_s"}].
  nlohmann::json export_leases() const;
  // Takes back leases saved by export_leases, so guests renewing after a
  // restart keep their addresses and new guests are not handed them. The
  // input is a file: entries that are malformed, expired, outside the pool or
  // taken are skipped; returns how many were restored.
  std::size_t import_leases(const nlohmann::json& saved);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
