// An interface in a kernel-nat network's host bridge (`member,ifname=IF`):
// the guest's frames go through the kernel only (bridge, routing, nftables
// masquerade), which is what makes kernel-nat the fastest NAT, and vnet
// serves DHCP and DNS on the same bridge through its own service TAP.
//
// The port holds no fd and carries no frames through vnet; it makes IF a
// member while it exists. A missing vn-... name is created as a persistent
// TAP (QEMU's `-netdev tap,ifname=IF,script=no,downscript=no`) and deleted
// with the port; any other interface (a veth, a TAP made with `ip tuntap
// add ... user $USER` for a QEMU that is not root) is taken as it is and
// only leaves the bridge.
#pragma once

#include <string>

#include "fabric/port.hpp"

namespace vnet {

class BridgeMemberPort : public Port {
 public:
  BridgeMemberPort(EventLoop& loop, Network& net, PortId id, std::string bridge, std::string ifname);
  ~BridgeMemberPort() override;

  std::string kind() const override { return "member"; }
  std::string peer() const override { return bridge_ + "/" + ifname_; }
  bool carries_frames() const override { return false; }

 protected:
  void send_to_peer(wire::Bytes) override {}

 private:
  std::string bridge_;
  std::string ifname_;
};

// The host bridge of kernel-nat network `network`: vn-NAME.
std::string kernel_nat_bridge(const std::string& network);
// Its service TAP, through which vnet's DHCP and DNS answer: vn-NAME-d.
std::string kernel_nat_service_tap(const std::string& network);

// A kernel-nat network's host bridge, its address and nftables rules, for
// as long as the object lives (privsep/kernel_net.hpp).
class KernelNatBridge {
 public:
  KernelNatBridge(std::string bridge, const std::string& address_cidr, const std::string& uplink);
  ~KernelNatBridge();
  KernelNatBridge(const KernelNatBridge&) = delete;
  KernelNatBridge& operator=(const KernelNatBridge&) = delete;

  const std::string& name() const { return bridge_; }

 private:
  std::string bridge_;
};

// Sets a vn-... interface's IPv4 address ("A.B.C.D/LEN") and brings it up.
void set_host_address(const std::string& ifname, const std::string& address_cidr);

// Joins (or takes out) ifname to the vn-... bridge, through the privileged
// helper when there is one.
void set_bridge_membership(const std::string& bridge, const std::string& ifname, bool join);

}  // namespace vnet
