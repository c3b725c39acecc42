// The kernel network set-up behind the root-only modes: an AF_PACKET socket
// on a host interface (bridged networks), a host bridge with an address and
// nftables masquerade (kernel-nat networks), interfaces joined to such a
// bridge, and an address on a host-side TAP (host-only networks as root).
//
// Shared, like tap_open.hpp, by the engine (when it keeps root) and by the
// privileged helper (when it does not). Every name is checked by the
// caller's request parser; these functions trust only that, and refuse to
// create or delete any interface whose name does not start with
// kOwnedPrefix, so a hostile engine cannot take down the host's own links.
#pragma once

#include <string>

#include "core/fd.hpp"

namespace vnet::privsep {

// Bridges, service TAPs and guest TAPs vnet creates are named vn-...; only
// those are ever created or deleted.
inline constexpr const char* kOwnedPrefix = "vn-";
bool is_owned_ifname(const std::string& ifname);

// A raw packet socket on ifname (inside /run/netns/NAME when netns is not
// empty): every frame of the segment (promiscuous), virtio-net headers both
// ways, its own transmissions not looped back. Non-blocking, close-on-exec.
UniqueFd open_packet_socket(const std::string& ifname, const std::string& netns);

// Creates (or re-creates, after a crash left one behind) the bridge with
// address "A.B.C.D/LEN", up, IPv4 forwarding on, and the nftables table
// that masquerades the bridge's subnet (out of uplink only, if not empty)
// and lets the outside answer but not open connections to guests.
void kernel_nat_up(const std::string& bridge, const std::string& address_cidr, const std::string& uplink);
// Removes the nftables table and the bridge; missing pieces are not errors.
void kernel_nat_down(const std::string& bridge);

// Joins ifname to bridge and brings it up. A missing vn-... name is created
// as a persistent TAP first (for QEMU's `-netdev tap,ifname=...`).
void bridge_add_member(const std::string& bridge, const std::string& ifname);
// Takes ifname out of bridge again; a persistent TAP vnet created is deleted.
void bridge_remove_member(const std::string& bridge, const std::string& ifname);

// Sets ifname's IPv4 address ("A.B.C.D/LEN") and brings it up.
void set_interface_address(const std::string& ifname, const std::string& address_cidr);

// The nftables table name for a bridge (one table per network).
std::string nft_table_name(const std::string& bridge);
// The ruleset kernel_nat_up loads (exposed for its unit test).
std::string nft_ruleset(const std::string& bridge, const std::string& subnet_cidr, const std::string& uplink);

}  // namespace vnet::privsep
