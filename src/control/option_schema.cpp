#include "control/option_schema.hpp"

#include <algorithm>

namespace vnet {

const std::vector<OptionSpec>& network_option_schema() {
  using T = OptionType;
  static const std::vector<OptionSpec> schema = {
      {"mode", "--mode", T::Choice, {"switch", "hub", "nat", "internal", "hostonly", "bridged", "kernel-nat"},
       "switch (learning, default), hub (repeat every frame), nat (DHCP, DNS, NAT to the host), internal (a switch: "
       "guests see each other only), hostonly (guests and the host's loopback through the gateway address, nothing "
       "beyond; DHCP on), bridged (root: guests join the LAN of --uplink) or kernel-nat (root: a host bridge with "
       "nftables masquerade, vnet's DHCP and DNS on it). See docs/modes.md"},
      {"uplink", "--uplink", T::Text, {},
       "bridged: the host interface whose LAN guests join; kernel-nat: masquerade out of this interface only "
       "(default: any but the bridge)"},
      {"host_tap", "--host-tap", T::Choice, {"on", "off"},
       "hostonly, as root: a host interface vn-NAME with the network's .1 address, so the host and guests reach "
       "each other directly (default off)"},
      {"mtu", "--mtu", T::Count, {}, "Largest packet without Ethernet header (default 65520)"},
      {"mac_aging", "--mac-aging", T::Text, {}, "Forget a MAC not seen for this long (default 300s)"},
      {"mac_limit", "--mac-limit", T::Count, {}, "Most MACs learned per port (default 1024)"},
      {"subnet", "--net", T::Text, {}, "nat, hostonly or --dhcp on: the guests' network (default 10.0.2.0/24)"},
      {"gateway", "--gateway", T::Text, {},
       "nat: gateway address, also the host's loopback (default .2); kernel-nat: the host bridge's address, the "
       "guests' router (default .1)"},
      {"dns", "--dns", T::Text, {}, "nat: DNS forwarder address (default .3)"},
      {"dhcp_start", "--dhcp-start", T::Text, {}, "nat, hostonly or --dhcp on: first DHCP lease (default .15)"},
      {"dhcp", "--dhcp", T::Choice, {"on", "off"},
       "DHCP server on|off (default: on for nat and hostonly, off otherwise; on a switch, hub or internal network it "
       "answers DHCP and pings and lets nothing out)"},
      {"dns_upstream", "--dns-upstream", T::List, {},
       "nat: resolvers ADDR[:PORT] to forward to (default: follow /etc/resolv.conf)"},
      {"ipv6", "--ipv6", T::Choice, {"on", "off"},
       "IPv6 for guests (router advertisements, DHCPv6, and on nat NAT to host IPv6) on|off (default on for nat, off "
       "otherwise)"},
      {"net6", "--net6", T::Text, {}, "nat: the guests' IPv6 prefix (default fec0::/64)"},
      {"gateway6", "--gateway6", T::Text, {}, "nat: IPv6 gateway address, also the host's ::1 (default ::2 of --net6)"},
      {"dns6", "--dns6", T::Text, {}, "nat: IPv6 address of the DNS forwarder (default ::3 of --net6)"},
      {"dhcp6", "--dhcp6", T::Choice, {"on", "off", "managed"},
       "DHCPv6 server on|off|managed (default on with IPv6: DNS and addresses to guests that ask; managed also sets "
       "the RA's M flag so guests ask for addresses)"},
      {"ra", "--ra", T::Choice, {"on", "off"},
       "IPv6 router advertisements on|off (default: on with IPv6 on nat; on a switch, hub, internal or hostonly "
       "network, on starts vnet's RA and DHCPv6 there, offering no route and no DNS)"},
      {"host_loopback", "--host-loopback", T::Choice, {"on", "off"},
       "nat: gateway addresses reach the host's 127.0.0.1 and ::1 (on|off)"},
      {"restrict", "--restrict", T::Choice, {"on", "off"},
       "nat: guests reach only the network's services and port forwards"},
      {"dhcp_reserve", "--dhcp-reserve", T::List, {}, "with DHCP: MAC=ADDRESS, a fixed DHCP lease (repeatable)"},
      {"tftp", "--tftp", T::Text, {}, "nat: serve this directory read-only over TFTP"},
      {"bootfile", "--bootfile", T::Text, {}, "nat: DHCP boot file name (PXE)"},
      {"domain", "--domain", T::Text, {}, "nat: DNS domain given by DHCP"},
      {"max_flows", "--max-flows", T::Count, {},
       "nat: most TCP, UDP and ICMP flows of all guests together (default 16384; each TCP flow holds one fd)"},
      {"max_flows_per_guest", "--max-flows-per-guest", T::Count, {},
       "nat: most flows of one guest (default 4096, at most --max-flows)"},
  };
  return schema;
}

const std::vector<OptionSpec>& port_setting_schema() {
  using T = OptionType;
  static const std::vector<OptionSpec> schema = {
      {"link", "--link", T::Choice, {"up", "down"}, "Cable state: up or down (down keeps the port but carries nothing)"},
      {"direction", "--direction", T::Choice, {"in", "out", "both"},
       "Which way the impairments apply: in (from the peer), out, both"},
      {"rate", "--rate", T::Text, {}, "Bandwidth limit, e.g. 10mbit, 512kbit, 1gbit"},
      {"burst", "--burst", T::Text, {}, "Token bucket size for --rate, e.g. 32k (default: one frame)"},
      {"delay", "--delay", T::Text, {}, "Added latency, e.g. 25ms"},
      {"jitter", "--jitter", T::Text, {}, "Random +- variation of the delay, e.g. 5ms"},
      {"loss", "--loss", T::Text, {}, "Random loss, e.g. 1%"},
      {"dup", "--dup", T::Text, {}, "Random duplication, e.g. 0.1%"},
      {"reorder", "--reorder", T::Text, {}, "Share of frames sent out of order, e.g. 1%"},
      {"queue", "--queue", T::Text, {}, "Impairment queue size, e.g. 1m (frames beyond it are dropped)"},
      {"clear", "--clear", T::Flag, {}, "Remove all impairments in --direction"},
      {"bwgroup", "--bwgroup", T::Text, {},
       "Share a bandwidth group's limit with its other ports (see `vnet bwgroup`); none leaves it"},
  };
  return schema;
}

std::vector<std::string_view> schema_keys(const std::vector<OptionSpec>& schema) {
  std::vector<std::string_view> keys;
  for (const auto& o : schema) keys.push_back(o.key);
  return keys;
}

std::vector<std::string_view> schema_keys(const std::vector<OptionSpec>& schema, std::vector<OptionType> types) {
  std::vector<std::string_view> keys;
  for (const auto& o : schema)
    if (std::find(types.begin(), types.end(), o.type) != types.end()) keys.push_back(o.key);
  return keys;
}

}  // namespace vnet
