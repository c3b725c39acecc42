#include "privsep/kernel_net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "core/error.hpp"
#include "privsep/tap_open.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::privsep {
namespace {

ifreq named_ifreq(const std::string& ifname) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  return ifr;
}

UniqueFd control_socket() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) throw UserError(errno_text("socket for interface set-up"));
  return sock;
}

// 0 if there is no such interface.
int ifindex_of(int sock, const std::string& ifname) {
  ifreq ifr = named_ifreq(ifname);
  return ::ioctl(sock, SIOCGIFINDEX, &ifr) == 0 ? ifr.ifr_ifindex : 0;
}

void set_up(int sock, const std::string& ifname, bool up) {
  ifreq ifr = named_ifreq(ifname);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) throw UserError(errno_text("interface " + ifname));
  ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) throw UserError(errno_text("cannot set interface " + ifname + " up/down"));
}

wire::Ipv4Cidr parse_cidr(const std::string& text) {
  auto cidr = wire::Ipv4Cidr::parse(text);
  if (!cidr || cidr->prefix_len < 1 || cidr->prefix_len > 30)
    throw UserError("bad interface address '" + text + "' (expected A.B.C.D/LEN, LEN 1 to 30)");
  return *cidr;
}

void set_ipv4(int sock, const std::string& ifname, unsigned long request, wire::Ipv4Addr addr) {
  ifreq ifr = named_ifreq(ifname);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(addr.to_u32());
  std::memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  if (::ioctl(sock, request, &ifr) != 0) throw UserError(errno_text("cannot set the address of " + ifname));
}

// Opens the persistent TAP ifname (creating it if absent) and sets its
// persistence; the fd is closed again, the device stays or goes.
void set_tap_persistence(const std::string& ifname, bool persist) {
  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) throw UserError(errno_text("cannot open /dev/net/tun"));
  ifreq ifr = named_ifreq(ifname);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) throw UserError(errno_text("cannot open TAP device " + ifname));
  if (::ioctl(tun.get(), TUNSETPERSIST, persist ? 1 : 0) != 0)
    throw UserError(errno_text("cannot change persistence of TAP device " + ifname));
}

void run_nft(const std::string& commands) {
  std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) throw UserError("nftables: cannot create a context");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), commands.c_str()) != 0) {
    std::string error = nft_ctx_get_error_buffer(ctx.get());
    while (!error.empty() && error.back() == '\n') error.pop_back();
    throw UserError("nftables refused the rules: " + error);
  }
}

void write_sysctl(const char* path, const char* value) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), value, std::strlen(value)) < 0) throw UserError(errno_text(std::string("cannot write ") + path));
}

void require_owned(const std::string& ifname) {
  if (!is_owned_ifname(ifname))
    throw UserError("interface " + ifname + " is not one vnet made (vnet creates and deletes only " + kOwnedPrefix +
                    "... interfaces)");
}

}  // namespace

bool is_owned_ifname(const std::string& ifname) {
  const std::string prefix = kOwnedPrefix;
  return ifname.size() > prefix.size() && ifname.size() < IFNAMSIZ && ifname.compare(0, prefix.size(), prefix) == 0;
}

UniqueFd open_packet_socket(const std::string& ifname, const std::string& netns) {
  NetnsGuard in_namespace(netns);
  UniqueFd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  if (!sock) throw UserError(errno_text("cannot open a packet socket for " + ifname + " (needs CAP_NET_RAW)"));
  const int index = ifindex_of(sock.get(), ifname);
  if (index == 0) throw UserError("no interface named " + ifname + " (see `ip link`)");
  const int on = 1;
  // The virtio-net header carries the kernel's GSO segments and partial
  // checksums whole, as on a TAP; outgoing frames (ours and the host's own)
  // are not read back, or the switch would learn them on the uplink.
  if (::setsockopt(sock.get(), SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) != 0 ||
      ::setsockopt(sock.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on) != 0)
    throw UserError(errno_text("cannot set up the packet socket on " + ifname));
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = index;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw UserError(errno_text("cannot bind the packet socket to " + ifname));
  packet_mreq promisc{};
  promisc.mr_ifindex = index;
  promisc.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(sock.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) != 0)
    throw UserError(errno_text("cannot make " + ifname + " promiscuous"));
  return sock;
}

std::string nft_table_name(const std::string& bridge) {
  std::string name = "vnet_" + bridge;
  for (char& c : name)
    if (c == '-' || c == '.') c = '_';
  return name;
}

std::string nft_ruleset(const std::string& bridge, const std::string& subnet_cidr, const std::string& uplink) {
  const std::string table = nft_table_name(bridge);
  const std::string out = uplink.empty() ? "oifname != \"" + bridge + "\"" : "oifname \"" + uplink + "\"";
  // "add" then "delete" clears a table a crashed engine left behind (nft
  // 1.0.6 has no "destroy"), then the table is made afresh.
  return "add table ip " + table + "\ndelete table ip " + table + "\n" +
         "table ip " + table + " {\n"
         "  chain postrouting {\n"
         "    type nat hook postrouting priority srcnat; policy accept;\n"
         "    ip saddr " + subnet_cidr + " ip daddr != " + subnet_cidr + " " + out + " masquerade\n"
         "  }\n"
         "  chain forward {\n"
         "    type filter hook forward priority filter; policy accept;\n"
         "    iifname \"" + bridge + "\" accept\n"
         "    oifname \"" + bridge + "\" ct state established,related accept\n"
         "    oifname \"" + bridge + "\" drop\n"
         "  }\n"
         "}\n";
}

void kernel_nat_up(const std::string& bridge, const std::string& address_cidr, const std::string& uplink) {
  require_owned(bridge);
  const wire::Ipv4Cidr address = parse_cidr(address_cidr);
  kernel_nat_down(bridge);
  UniqueFd sock = control_socket();
  if (::ioctl(sock.get(), SIOCBRADDBR, bridge.c_str()) != 0) {
    if (errno == EPERM) throw UserError("cannot create bridge " + bridge + ": permission denied (--mode kernel-nat needs "
                                        "vnet started as root)");
    throw UserError(errno_text("cannot create bridge " + bridge));
  }
  try {
    set_interface_address(bridge, address_cidr);
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    const wire::Ipv4Cidr subnet{address.network(), address.prefix_len};
    run_nft(nft_ruleset(bridge, subnet.to_string(), uplink));
  } catch (...) {
    kernel_nat_down(bridge);
    throw;
  }
}

void kernel_nat_down(const std::string& bridge) {
  require_owned(bridge);
  const std::string table = nft_table_name(bridge);
  try {
    run_nft("add table ip " + table + "\ndelete table ip " + table + "\n");
  } catch (const UserError&) {
    // No nftables in this kernel: then there is no table to remove either.
  }
  UniqueFd sock = control_socket();
  if (ifindex_of(sock.get(), bridge) == 0) return;
  set_up(sock.get(), bridge, false);
  if (::ioctl(sock.get(), SIOCBRDELBR, bridge.c_str()) != 0)
    throw UserError(errno_text("cannot delete bridge " + bridge));
}

void bridge_add_member(const std::string& bridge, const std::string& ifname) {
  require_owned(bridge);
  UniqueFd sock = control_socket();
  if (ifindex_of(sock.get(), ifname) == 0) {
    if (!is_owned_ifname(ifname))
      throw UserError("no interface named " + ifname + " (vnet creates missing TAPs only under " +
                      std::string(kOwnedPrefix) + "... names)");
    set_tap_persistence(ifname, true);
  }
  ifreq ifr = named_ifreq(bridge);
  ifr.ifr_ifindex = ifindex_of(sock.get(), ifname);
  if (::ioctl(sock.get(), SIOCBRADDIF, &ifr) != 0)
    throw UserError(errno_text("cannot add " + ifname + " to bridge " + bridge));
  set_up(sock.get(), ifname, true);
}

void bridge_remove_member(const std::string& bridge, const std::string& ifname) {
  require_owned(bridge);
  UniqueFd sock = control_socket();
  const int index = ifindex_of(sock.get(), ifname);
  if (index == 0) return;
  ifreq ifr = named_ifreq(bridge);
  ifr.ifr_ifindex = index;
  ::ioctl(sock.get(), SIOCBRDELIF, &ifr);  // the bridge may be gone already
  if (is_owned_ifname(ifname)) {
    try {
      set_tap_persistence(ifname, false);  // goes once QEMU has closed it too
    } catch (const UserError&) {
      // Not a TAP (a veth named vn-... by the user): left as it is.
    }
  }
}

void set_interface_address(const std::string& ifname, const std::string& address_cidr) {
  require_owned(ifname);
  const wire::Ipv4Cidr address = parse_cidr(address_cidr);
  UniqueFd sock = control_socket();
  set_ipv4(sock.get(), ifname, SIOCSIFADDR, address.addr);
  set_ipv4(sock.get(), ifname, SIOCSIFNETMASK, address.netmask());
  set_up(sock.get(), ifname, true);
}

}  // namespace vnet::privsep
