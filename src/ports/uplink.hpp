// A host interface's Ethernet segment as a port (`uplink,ifname=IF`): the
// network joins the LAN that IF is on, as VirtualBox's bridged adapter
// does, without moving the host's own address into a bridge. Guests then
// take their addresses from that LAN's DHCP server.
//
// It is a raw packet socket in promiscuous mode with virtio-net headers, so
// frames move exactly as through a TAP (GSO segments and partial checksums
// stay whole). Frames the host itself sends on IF are not seen, and guests
// cannot reach the host through IF: as with macvtap, the host's stack and
// the uplink's guests meet only on the wire. Needs root (CAP_NET_RAW); an
// engine that dropped it asks the privileged helper, which hands over only
// interfaces root named with `vnet up --allow-if IF`.
#pragma once

#include "ports/tap.hpp"

namespace vnet {

class UplinkPort : public TapPort {
 public:
  UplinkPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns);

  std::string kind() const override { return "uplink"; }
};

}  // namespace vnet
