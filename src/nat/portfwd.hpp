// Port forwarding into a NAT network: a host socket (TCP listener or UDP
// socket) whose traffic reaches guest:port, like QEMU's hostfwd= and
// VirtualBox's NAT port forwarding rules.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "nat/guest_io.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::nat {

class TcpTranslator;
class UdpTranslator;

enum class ForwardProto { Tcp, Udp };

struct ForwardRule {
  std::string name;
  ForwardProto proto = ForwardProto::Tcp;
  // QEMU binds all addresses by default; vnet binds loopback only, so a
  // forward never opens a guest to the network by surprise. Either family:
  // an IPv6 host address ([::1]) listens on IPv6 only.
  wire::IpAddr host_addr = wire::Ipv4Addr{{127, 0, 0, 1}};
  std::uint16_t host_port = 0;
  // Unset: the network's first DHCP address (IPv4), whatever the host
  // side's family; an IPv6 guest address must be in the network's prefix.
  std::optional<wire::IpAddr> guest_addr;
  std::uint16_t guest_port = 0;

  // Canonical QEMU form, e.g. "tcp:127.0.0.1:2222-10.0.2.15:22" or
  // "tcp:[::1]:2222-:22" (IPv6 in brackets; guest address left out when unset).
  std::string to_string() const;
};

const char* to_string(ForwardProto p);

// Parses a rule in either form; throws UserError naming what is wrong.
//   QEMU hostfwd:  [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport
//                  (proto empty, or left out with its ':', is tcp; host
//                  address empty: 127.0.0.1)
//   VirtualBox:    NAME:tcp|udp:[hostip]:hostport:[guestip]:guestport
//                  (brackets optional, may be empty; ',' also separates,
//                  as in VBoxManage modifyvm --natpf1)
// Rules without a name are named PROTO-HOSTPORT (PROTO-ADDR-HOSTPORT when
// the host address is not 127.0.0.1). Addresses are IPv4 or IPv6 literals;
// in the ':' forms an IPv6 address goes in brackets ([::1]).
ForwardRule parse_forward_rule(std::string_view text);

class PortForwarder {
 public:
  PortForwarder(GuestIo& io, TcpTranslator& tcp, UdpTranslator& udp);
  ~PortForwarder();
  PortForwarder(const PortForwarder&) = delete;
  PortForwarder& operator=(const PortForwarder&) = delete;

  // Parses, checks (unique name and host address, guest inside the
  // network) and opens the host socket. Returns the rule's name. Throws
  // UserError, e.g. "127.0.0.1:2222 is already in use".
  std::string add(std::string_view rule_text);
  std::string add(ForwardRule rule);
  // Closes the rule's host socket: new connections are refused, accepted
  // TCP connections go on; UDP flows through it end. Throws UserError if
  // there is no such rule.
  void remove(std::string_view name);
  // [{name, proto, host, guest, rule, connections|datagrams}]
  nlohmann::json list() const;
  std::size_t size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
