// TCP translation: each guest connection becomes a host socket connection.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "core/fd.hpp"
#include "core/sockaddr.hpp"
#include "nat/guest_io.hpp"
#include "wire/bytes.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::nat {

class TcpTranslator {
 public:
  explicit TcpTranslator(GuestIo& io);
  ~TcpTranslator();
  TcpTranslator(const TcpTranslator&) = delete;
  TcpTranslator& operator=(const TcpTranslator&) = delete;

  // A TCP segment l4 from guest src to dst, either family (the gateway
  // checked the IP header: not a fragment, header checksum good); `target`
  // is where a new connection goes. An empty target
  // (family AF_UNSPEC) means policy forbids new connections to that address
  // (--restrict, --host-loopback off): a SYN is answered with RST and
  // counted, while segments of known flows (port forwards) still pass.
  void on_segment(const wire::IpAddr& src, const wire::IpAddr& dst, wire::Bytes l4, const SockAddr& target);
  // A host connection accepted by a port forward, for guest:port. `client`
  // is the host-side peer; the guest sees it as the connection's source
  // (a loopback client appears as the gateway address).
  void open_inbound(UniqueFd conn, const SockAddr& client, const wire::IpAddr& guest, std::uint16_t guest_port);
  nlohmann::json status() const;
  // Engine shutdown: resets every guest connection (RST to the guest, the
  // host socket closed), so guests learn at once that their connections are
  // gone instead of retransmitting into a stopped engine.
  void reset_all();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
