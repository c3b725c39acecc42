#include "ports/factory.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <cstring>
#include <charconv>
#include <optional>

#include "core/error.hpp"
#include "ports/bridge_member.hpp"
#include "ports/dgram.hpp"
#include "ports/pcap.hpp"
#include "ports/stream.hpp"
#include "ports/tap.hpp"
#include "ports/uplink.hpp"
#include "ports/vde.hpp"
#include "ports/vhost_user.hpp"
#include "ports/vxlan.hpp"
#include "wire/vxlan.hpp"

namespace vnet {
namespace {

std::string require(const PortSpec& spec, std::string_view key) {
  const std::string* v = spec.find(key);
  if (!v || v->empty()) throw UserError(spec.kind + ": missing option " + std::string(key) + "=");
  return *v;
}

// A listener without a host serves this machine only; "0.0.0.0" (or "::")
// must be asked for.
constexpr const char* kDefaultListenHost = "127.0.0.1";

// The "addr.", "local." or "remote." family of options of -netdev stream/dgram.
SockAddr socket_address(const PortSpec& spec, const std::string& prefix, bool passive, bool listener = false) {
  std::string type = require(spec, prefix + "type");
  if (type == "unix") {
    if (spec.get(prefix + "abstract") == "on") throw UserError("abstract unix sockets are not supported");
    return SockAddr::unix_path(require(spec, prefix + "path"));
  }
  if (type == "inet") {
    std::string host = spec.get(prefix + "host");
    if (host.empty() && listener) host = kDefaultListenHost;
    return SockAddr::inet(host, require(spec, prefix + "port"), passive);
  }
  if (type == "fd") throw UserError(prefix + "type=fd is for processes QEMU starts; use unix or inet");
  throw UserError(prefix + "type=" + type + ": expected unix or inet");
}

bool is_multicast(const SockAddr& a) {
  if (a.family() != AF_INET) return false;
  auto* in = reinterpret_cast<const sockaddr_in*>(&a.storage);
  return IN_MULTICAST(ntohl(in->sin_addr.s_addr));
}

std::unique_ptr<Port> make_stream(EventLoop& loop, Network& net, const PortSpec& spec, PortId id) {
  bool server = parse_switch("server", spec.get("server", "off"));
  SockAddr addr = socket_address(spec, "addr.", server, server);
  if (server) return std::make_unique<StreamListenerPort>(loop, net, id, addr);
  return std::make_unique<StreamPort>(loop, net, id, addr);
}

std::unique_ptr<Port> make_socket(EventLoop& loop, Network& net, const PortSpec& spec, PortId id) {
  const int modes = spec.has("listen") + spec.has("connect") + spec.has("mcast") + spec.has("udp");
  if (modes != 1) throw UserError("socket: give exactly one of listen=, connect=, mcast=, udp=");
  if (spec.has("listen")) {
    std::string listen = spec.get("listen");
    if (!listen.empty() && listen.front() == ':') listen = kDefaultListenHost + listen;
    return std::make_unique<StreamListenerPort>(loop, net, id, SockAddr::inet_hostport(listen, true));
  }
  if (spec.has("connect"))
    return std::make_unique<StreamPort>(loop, net, id, SockAddr::inet_hostport(spec.get("connect"), false));
  DgramConfig config;
  if (spec.has("mcast")) {
    config.remote = SockAddr::inet_hostport(spec.get("mcast"), false);
    config.multicast = true;
    config.mcast_interface = spec.get("localaddr");
    if (!is_multicast(config.remote)) throw UserError("socket: mcast=" + spec.get("mcast") + " is not a multicast group");
  } else {
    config.remote = SockAddr::inet_hostport(spec.get("udp"), false);
    config.local = SockAddr::inet_hostport(require(spec, "localaddr"), true);
  }
  return std::make_unique<DgramPort>(loop, net, id, config);
}

std::unique_ptr<Port> make_dgram(EventLoop& loop, Network& net, const PortSpec& spec, PortId id) {
  DgramConfig config;
  config.remote = socket_address(spec, "remote.", false);
  if (is_multicast(config.remote)) {
    config.multicast = true;
    config.mcast_interface = spec.get("local.host");
  } else if (spec.has("local.type")) {
    config.local = socket_address(spec, "local.", true);
  } else if (config.remote.family() == AF_UNIX) {
    throw UserError("dgram: a unix remote needs local.type=unix,local.path=P so the peer can answer");
  }
  return std::make_unique<DgramPort>(loop, net, id, config);
}

std::unique_ptr<Port> make_vde(EventLoop& loop, Network& net, const PortSpec& spec, PortId id,
                               const SocketAccess& access) {
  if (spec.has("dir") == spec.has("connect"))
    throw UserError("vde: give exactly one of dir=DIR (vnet is the switch) or connect=DIR (vnet plugs into a vde_switch)");
  if (spec.has("dir")) return std::make_unique<VdeSwitchPort>(loop, net, id, require(spec, "dir"), access);
  return std::make_unique<VdePlugPort>(loop, net, id, require(spec, "connect"));
}

// VirtualBox's "UDP Tunnel" attachment by name: the network's frames go to
// remote=H:P as one UDP datagram each and come back to local=H:P, the same
// wire format as -netdev dgram (and QEMU's -netdev socket,udp=). Both ends
// are required: unlike a multicast bus a tunnel has exactly one peer.
std::unique_ptr<Port> make_udp_tunnel(EventLoop& loop, Network& net, const PortSpec& spec, PortId id) {
  DgramConfig config;
  config.local = SockAddr::inet_hostport(require(spec, "local"), true);
  config.remote = SockAddr::inet_hostport(require(spec, "remote"), false);
  if (is_multicast(config.remote))
    throw UserError("udp-tunnel: remote=" + spec.get("remote") +
                    " is a multicast group; for a bus use dgram,remote.type=inet,remote.host=GROUP,...");
  return std::make_unique<DgramPort>(loop, net, id, config);
}

// "H:P", "[V6]:P", or a bare host ("H", "V6", "[V6]") on the IANA port 4789.
SockAddr vxlan_endpoint(const std::string& text, bool passive) {
  const std::string default_port = ":" + std::to_string(wire::kVxlanUdpPort);
  const auto colons = std::count(text.begin(), text.end(), ':');
  if (!text.empty() && text.front() == '[')
    return SockAddr::inet_hostport(text.find("]:") == std::string::npos ? text + default_port : text, passive);
  if (colons == 0) return SockAddr::inet_hostport(text + default_port, passive);
  if (colons > 1) return SockAddr::inet_hostport("[" + text + "]" + default_port, passive);
  return SockAddr::inet_hostport(text, passive);
}

// The first IPv4 address of interface `dev`: where a group member sends from
// and hears unicast replies when local= is not given.
SockAddr interface_ipv4(const std::string& dev, std::uint16_t port) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throw UserError(errno_text("vxlan: cannot list interfaces"));
  std::optional<SockAddr> found;
  for (ifaddrs* a = list; a && !found; a = a->ifa_next)
    if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && dev == a->ifa_name) {
      SockAddr s;
      std::memcpy(&s.storage, a->ifa_addr, sizeof(sockaddr_in));
      s.length = sizeof(sockaddr_in);
      reinterpret_cast<sockaddr_in*>(&s.storage)->sin_port = htons(port);
      found = s;
    }
  ::freeifaddrs(list);
  if (!found) throw UserError("vxlan: interface " + dev + " has no IPv4 address; give local=ADDR:PORT");
  return *found;
}

bool is_wildcard(const SockAddr& a) {
  if (a.family() == AF_INET) return reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr == INADDR_ANY;
  if (a.family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr);
  return false;
}

std::uint32_t parse_vni(const std::string& text) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v > wire::kVxlanMaxVni)
    throw UserError("vxlan: vni=" + text + ": expected a VXLAN network id from 0 to 16777215");
  return v;
}

// vxlan,vni=N,remote=H[:P][,remote=...][,local=H:P]   (unicast, head-end replication)
// vxlan,vni=N,group=G[:P],dev=IF[,local=H:P]           (IPv4 multicast)
std::unique_ptr<Port> make_vxlan(EventLoop& loop, Network& net, const PortSpec& spec, PortId id) {
  VxlanConfig config;
  config.vni = parse_vni(require(spec, "vni"));
  config.udp_checksum = parse_switch("udpcsum", spec.get("udpcsum", "off"));
  const auto remotes = spec.all("remote");
  if (spec.has("group") == !remotes.empty())
    throw UserError("vxlan: give remote=H:P (one or more) or group=G:P,dev=IF, not both");
  if (spec.has("group")) {
    config.group = vxlan_endpoint(spec.get("group"), false);
    if (!is_multicast(*config.group)) throw UserError("vxlan: group=" + spec.get("group") + " is not an IPv4 multicast group");
    config.dev = require(spec, "dev");
    if (if_nametoindex(config.dev.c_str()) == 0) throw UserError("vxlan: no interface named '" + config.dev + "'");
    config.local = spec.has("local") ? vxlan_endpoint(spec.get("local"), true)
                                     : interface_ipv4(config.dev, config.group->port());
    if (config.local.family() != AF_INET || is_wildcard(config.local))
      throw UserError("vxlan: with group=, local= must be this host's IPv4 address on " + config.dev);
  } else {
    if (spec.has("dev")) throw UserError("vxlan: dev= names the interface of a group=; unicast remotes need none");
    for (const auto& r : remotes) {
      config.remotes.push_back(vxlan_endpoint(r, false));
      if (is_multicast(config.remotes.back()))
        throw UserError("vxlan: remote=" + r + " is a multicast group; use group=" + r + ",dev=IF");
    }
    config.local = spec.has("local") ? vxlan_endpoint(spec.get("local"), true)
                                     : SockAddr::inet_hostport(config.remotes.front().family() == AF_INET6 ? "[::]:4789" : "0.0.0.0:4789", true);
    for (const auto& r : config.remotes)
      if (r.family() != config.local.family())
        throw UserError("vxlan: remote " + r.to_string() + " and local " + config.local.to_string() + " are of different IP versions");
  }
  return std::make_unique<VxlanPort>(loop, net, id, config);
}

std::uint16_t parse_vlan(const std::string& text) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v > 4094)
    throw UserError("vlan=" + text + ": expected a VLAN id from 0 to 4094");
  return static_cast<std::uint16_t>(v);
}

// trunk=all, or VLAN ids and ranges joined by ':' (a comma would end the
// option): "10:20", "100-199:300".
std::bitset<4096> parse_trunk(const std::string& text) {
  std::bitset<4096> vlans;
  auto bad = [&](const std::string& why) {
    return UserError("trunk=" + text + ": " + why + " (expected all, or VLAN ids 1-4094 and ranges joined by ':', e.g. 10:20:100-199)");
  };
  if (text == "all") {
    vlans.set();
    return vlans;
  }
  auto number = [&](std::string_view item) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc{} || p != item.data() + item.size() || v < 1 || v > 4094)
      throw bad("'" + std::string(item) + "' is not a VLAN id");
    return v;
  };
  std::string_view rest = text;
  if (rest.empty()) throw bad("empty list");
  while (true) {
    const auto colon = rest.find(':');
    const std::string_view item = rest.substr(0, colon);
    const auto dash = item.find('-');
    const unsigned first = number(item.substr(0, dash));
    const unsigned last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (last < first) throw bad("range " + std::string(item) + " runs backwards");
    for (unsigned v = first; v <= last; ++v) vlans.set(v);
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  return vlans;
}

// The socket file a port binds for its peers, if any.
std::string bound_unix_path(const PortSpec& spec) {
  if (spec.kind == "stream" && spec.get("server") == "on" && spec.get("addr.type") == "unix")
    return spec.get("addr.path");
  if (spec.kind == "dgram" && spec.get("local.type") == "unix") return spec.get("local.path");
  if (spec.kind == "vhost-user" && parse_switch("server", spec.get("server", "on"))) return spec.get("path");
  return "";
}

}  // namespace

void apply_socket_access(const std::string& path, const SocketAccess& access) {
  // The file was bound a moment ago under umask 077; check it is still our
  // socket (not something swapped in) before widening it to a group.
  struct stat st{};
  // A directory the unprivileged engine cannot enter: the privileged helper
  // bound the socket there for us, owner-only (see privsep/).
  if (::lstat(path.c_str(), &st) != 0 && errno == EACCES) return;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
    throw UserError("unix socket " + path + " changed under us after bind: refusing to set its mode");
  if (st.st_uid != ::geteuid()) return;  // bound for us by the privileged helper, which sets its mode
  if (access.group && ::lchown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0)
    throw UserError(errno_text("cannot give unix socket " + path + " to group " + std::to_string(*access.group)));
  if (::chmod(path.c_str(), access.group ? 0660 : 0600) != 0)
    throw UserError(errno_text("cannot set the mode of unix socket " + path));
}

std::unique_ptr<Port> make_port(EventLoop& loop, Network& net, const PortSpec& spec, const SocketAccess& access) {
  // Cheap checks first, so a typo fails before any socket is opened.
  const std::uint16_t vlan = spec.has("vlan") ? parse_vlan(spec.get("vlan")) : 0;
  std::optional<VlanConfig> trunk;
  if (spec.has("trunk"))
    trunk = VlanConfig::trunk(parse_trunk(spec.get("trunk")), spec.has("vlan") && vlan != 0 ? vlan : VlanConfig::kNoNative);
  if (spec.kind == "tap" || spec.kind == "uplink" || spec.kind == "member") require(spec, "ifname");
  if (spec.kind == "member" && net.mode() != NetworkMode::KernelNat)
    throw UserError("member ports join a kernel-nat network's host bridge; network '" + net.name() + "' is " +
                    to_string(net.mode()) + " (use a tap port here)");
  if (spec.kind == "pcap") require(spec, "file");
  const PortId id = net.next_port_id();
  std::unique_ptr<Port> port;
  try {
    if (spec.kind == "stream") port = make_stream(loop, net, spec, id);
    else if (spec.kind == "socket") port = make_socket(loop, net, spec, id);
    else if (spec.kind == "dgram") port = make_dgram(loop, net, spec, id);
    else if (spec.kind == "udp-tunnel") port = make_udp_tunnel(loop, net, spec, id);
    else if (spec.kind == "tap") port = std::make_unique<TapPort>(loop, net, id, spec.get("ifname"), spec.get("netns"));
    else if (spec.kind == "uplink") port = std::make_unique<UplinkPort>(loop, net, id, spec.get("ifname"), spec.get("netns"));
    else if (spec.kind == "member")
      port = std::make_unique<BridgeMemberPort>(loop, net, id, kernel_nat_bridge(net.name()), spec.get("ifname"));
    else if (spec.kind == "pcap") port = std::make_unique<PcapPort>(loop, net, id, spec.get("file"));
    else if (spec.kind == "vde") port = make_vde(loop, net, spec, id, access);
    else if (spec.kind == "vxlan") port = make_vxlan(loop, net, spec, id);
    else if (spec.kind == "vhost-user")
      port = std::make_unique<VhostUserPort>(loop, net, id, require(spec, "path"),
                                             parse_switch("server", spec.get("server", "on")));
    else throw UserError("unknown port kind '" + spec.kind + "'");
    if (const std::string path = bound_unix_path(spec); !path.empty()) apply_socket_access(path, access);
  } catch (...) {
    port.reset();
    net.release_port_id(id);  // a failed add leaves no gap in the numbering
    throw;
  }
  if (trunk) port->set_vlan_config(*trunk);
  else port->set_vlan(vlan);
  port->set_spec(spec.to_string());
  return port;
}

}  // namespace vnet
