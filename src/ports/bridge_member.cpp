#include "ports/bridge_member.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "privsep/helper.hpp"
#include "privsep/kernel_net.hpp"

namespace vnet {

std::string kernel_nat_bridge(const std::string& network) { return privsep::kOwnedPrefix + network; }

std::string kernel_nat_service_tap(const std::string& network) { return kernel_nat_bridge(network) + "-d"; }

void set_bridge_membership(const std::string& bridge, const std::string& ifname, bool join) {
  if (privsep::Broker* helper = privsep::broker()) return helper->bridge_member(bridge, ifname, join);
  if (join) privsep::bridge_add_member(bridge, ifname);
  else privsep::bridge_remove_member(bridge, ifname);
}

KernelNatBridge::KernelNatBridge(std::string bridge, const std::string& address_cidr, const std::string& uplink)
    : bridge_(std::move(bridge)) {
  if (privsep::Broker* helper = privsep::broker()) helper->kernel_nat_up(bridge_, address_cidr, uplink);
  else privsep::kernel_nat_up(bridge_, address_cidr, uplink);
  log::info("bridge {} up with {}, masquerading out of {}", bridge_, address_cidr, uplink.empty() ? "any interface" : uplink);
}

KernelNatBridge::~KernelNatBridge() {
  try {
    if (privsep::Broker* helper = privsep::broker()) helper->kernel_nat_down(bridge_);
    else privsep::kernel_nat_down(bridge_);
    log::info("bridge {} and its nftables table removed", bridge_);
  } catch (const std::exception& e) {
    log::warn("bridge {}: could not remove it: {}", bridge_, e.what());
  }
}

void set_host_address(const std::string& ifname, const std::string& address_cidr) {
  if (privsep::Broker* helper = privsep::broker()) helper->set_address(ifname, address_cidr);
  else privsep::set_interface_address(ifname, address_cidr);
}

BridgeMemberPort::BridgeMemberPort(EventLoop& loop, Network& net, PortId id, std::string bridge, std::string ifname)
    : Port(loop, net, id), bridge_(std::move(bridge)), ifname_(std::move(ifname)) {
  set_bridge_membership(bridge_, ifname_, true);
}

BridgeMemberPort::~BridgeMemberPort() {
  try {
    set_bridge_membership(bridge_, ifname_, false);
  } catch (const std::exception& e) {
    log::warn("member {}: could not leave bridge {}: {}", ifname_, bridge_, e.what());
  }
}

}  // namespace vnet
