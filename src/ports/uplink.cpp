#include "ports/uplink.hpp"

#include "privsep/helper.hpp"
#include "privsep/kernel_net.hpp"

namespace vnet {
namespace {

UniqueFd open_uplink(const std::string& ifname, const std::string& netns) {
  privsep::Broker* helper = privsep::broker();
  return helper ? helper->open_packet(ifname, netns) : privsep::open_packet_socket(ifname, netns);
}

}  // namespace

UplinkPort::UplinkPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns)
    : TapPort(loop, net, id, ifname, netns, open_uplink(ifname, netns)) {}

}  // namespace vnet
