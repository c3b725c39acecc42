#include "ports/vxlan.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "fabric/network.hpp"
#include "wire/vxlan.hpp"

namespace vnet {
namespace {

constexpr int kSocketBuffer = 4 << 20;

UniqueFd udp_socket(int family) {
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw UserError(errno_text("vxlan: socket"));
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
  return fd;
}

// The two addresses are the same host (ports aside).
bool same_host(const sockaddr_storage& a, const SockAddr& b) {
  if (a.ss_family != b.family()) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b.storage)->sin_addr.s_addr;
  if (a.ss_family == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&b.storage)->sin6_addr, 16) == 0;
  return false;
}

std::uint16_t port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return 0;
}

// A flow hash over what tells flows apart inside the frame: the MACs and
// EtherType, and for IPv4/IPv6 the addresses, protocol and (TCP, UDP) ports.
std::uint64_t inner_flow_hash(wire::Bytes frame) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  auto mix = [&](wire::Bytes bytes) {
    for (auto b : bytes) h = (h ^ b) * 0x100000001b3ull;
  };
  mix(frame.first(14));
  const std::uint16_t ethertype = wire::load_be16(frame, 12);
  const wire::Bytes l3 = frame.subspan(14);
  std::size_t l4 = 0;
  std::uint8_t protocol = 0;
  if (ethertype == 0x0800 && l3.size() >= 20) {
    mix(l3.subspan(12, 8));
    protocol = l3[9];
    l4 = std::size_t{l3[0] & 0x0fu} * 4;
  } else if (ethertype == 0x86dd && l3.size() >= 40) {
    mix(l3.subspan(8, 32));
    protocol = l3[6];
    l4 = 40;
  }
  if ((protocol == 6 || protocol == 17) && l4 >= 20 && l3.size() >= l4 + 4) mix(l3.subspan(l4, 4));
  return h ^ (h >> 32);
}

}  // namespace

VxlanPort::VxlanPort(EventLoop& loop, Network& net, PortId id, VxlanConfig config)
    : FdPort(loop, net, id),
      config_(std::move(config)),
      endpoints_(config_.remotes),
      batch_(std::min<std::size_t>(net.max_frame() + wire::kVxlanHeaderSize, 65536)) {
  open_receiver();
  open_senders();
  // Last: the only set-up that registers a handler of its own with the loop,
  // so nothing after it can throw and leave the handler behind.
  if (config_.group) open_group_receiver();
  warn_about_path_mtu();
}

VxlanPort::~VxlanPort() {
  if (group_fd_) loop_.remove(group_fd_.get());
}

std::string VxlanPort::peer() const {
  std::string out = "vni " + std::to_string(config_.vni) + " ";
  if (config_.group) return out + "group " + config_.group->to_string() + " on " + config_.dev;
  for (std::size_t i = 0; i < endpoints_.size(); ++i) out += (i ? "," : "") + endpoints_[i].to_string();
  return out;
}

void VxlanPort::open_receiver() {
  UniqueFd fd = udp_socket(config_.local.family());
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), config_.local.get(), config_.local.length) != 0)
    throw UserError(errno_text("vxlan: cannot bind " + config_.local.to_string() +
                               " (another VXLAN endpoint, e.g. a kernel vxlan device, may use the port)"));
  attach(std::move(fd));
}

// The group's datagrams are addressed to the group, not to the local
// address: a second socket bound to the group hears them, and only them.
void VxlanPort::open_group_receiver() {
  const auto& group = reinterpret_cast<const sockaddr_in&>(config_.group->storage);
  group_fd_ = udp_socket(AF_INET);
  int one = 1;
  setsockopt(group_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(group_fd_.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(group_fd_.get(), config_.group->get(), config_.group->length) != 0)
    throw UserError(errno_text("vxlan: cannot bind the group address " + config_.group->to_string()));
  ip_mreqn join{};
  join.imr_multiaddr = group.sin_addr;
  join.imr_ifindex = static_cast<int>(if_nametoindex(config_.dev.c_str()));
  if (::setsockopt(group_fd_.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof join) != 0)
    throw UserError(errno_text("vxlan: cannot join " + config_.group->to_string() + " on " + config_.dev));
  loop_.add(group_fd_.get(), EPOLLIN, [this](std::uint32_t) { receive(group_fd_.get()); });
}

// The sockets datagrams leave from, bound to the local address with ports
// the kernel picks from its ephemeral range (what Linux vxlan draws source
// ports from too).
void VxlanPort::open_senders() {
  SockAddr bind_to = config_.local;
  if (bind_to.family() == AF_INET) reinterpret_cast<sockaddr_in*>(&bind_to.storage)->sin_port = 0;
  else reinterpret_cast<sockaddr_in6*>(&bind_to.storage)->sin6_port = 0;
  for (std::size_t i = 0; i < kSourcePorts; ++i) {
    UniqueFd fd = udp_socket(config_.local.family());
    if (::bind(fd.get(), bind_to.get(), bind_to.length) != 0)
      throw UserError(errno_text("vxlan: cannot bind a sending socket on " + bind_to.to_string()));
    int dont_fragment = IP_PMTUDISC_DONT;  // let a too-big frame pass fragmented
    if (config_.local.family() == AF_INET) {
      setsockopt(fd.get(), IPPROTO_IP, IP_MTU_DISCOVER, &dont_fragment, sizeof dont_fragment);
      int no_check = config_.udp_checksum ? 0 : 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_NO_CHECK, &no_check, sizeof no_check);
    } else {
      int v6_dont_fragment = IPV6_PMTUDISC_DONT;
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6_dont_fragment, sizeof v6_dont_fragment);
    }
    if (config_.group) {
      ip_mreqn via{};
      via.imr_ifindex = static_cast<int>(if_nametoindex(config_.dev.c_str()));
      setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &via, sizeof via);
      unsigned char ttl = 1, loop_back = 1;  // other endpoints on this host hear the group too
      setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
      setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop_back, sizeof loop_back);
    }
    SockAddr self;
    self.length = sizeof self.storage;
    getsockname(fd.get(), self.get(), &self.length);
    sender_addrs_.push_back(self);
    senders_.push_back(std::move(fd));
  }
}

// A frame as large as the network's MTU allows must fit the underlay's path
// MTU with 50 (IPv6: 70) bytes of headers around it, or it travels in IP
// fragments: say once which network MTU avoids that.
void VxlanPort::warn_about_path_mtu() const {
  const SockAddr& probe_to = config_.group ? *config_.group : endpoints_.front();
  UniqueFd probe(::socket(probe_to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe || ::connect(probe.get(), probe_to.get(), probe_to.length) != 0) return;
  int path_mtu = 0;
  socklen_t len = sizeof path_mtu;
  const bool v4 = probe_to.family() == AF_INET;
  if (getsockopt(probe.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_MTU : IPV6_MTU, &path_mtu, &len) != 0) return;
  const int overhead = static_cast<int>(v4 ? wire::kVxlanOverheadIpv4 : wire::kVxlanOverheadIpv6) - 14;
  const int fitting_mtu = path_mtu - overhead - 14;  // the inner IP MTU that needs no fragments
  if (static_cast<int>(net_.max_frame()) - 18 <= fitting_mtu) return;
  log::warn("{}: port {} vxlan: the path to {} has MTU {}; inner packets above {} bytes travel in IP fragments. "
            "Set this network's MTU (and the guests') to {} to avoid it.",
            net_.name(), id(), probe_to.to_string(), path_mtu, fitting_mtu, fitting_mtu);
}

void VxlanPort::on_readable() { receive(fd()); }

void VxlanPort::receive(int fd) {
  for (int round = 0; round < 8; ++round) {
    const int n = batch_.receive(fd);
    for (int i = 0; i < n; ++i) {
      if (batch_.truncated(i)) {
        counters_.drop_oversize++;
        continue;
      }
      accept(batch_.datagram(i), batch_.source(i));
      if (!attached()) return;
    }
    if (n < DatagramBatch::kSize) return;
  }
}

void VxlanPort::accept(wire::Bytes datagram, const sockaddr_storage& from) {
  if (is_own(from)) return;  // our own flood, looped back by the group
  const auto endpoint = endpoint_of(from);
  if (!endpoint) {
    counters_.drop_tunnel++;
    return;
  }
  const auto parsed = wire::parse_vxlan(datagram);
  if (!parsed.ok()) {
    if (parsed.error == wire::VxlanError::InnerTooShort) counters_.drop_runt++;
    else counters_.drop_malformed++;
    return;
  }
  if (parsed.vni != config_.vni) {
    counters_.drop_tunnel++;
    return;
  }
  if (!fdb_.learn(wire::MacAddr::from_bytes(parsed.inner.subspan(6, 6)), *endpoint, monotonic_now()))
    counters_.mac_limit++;
  from_peer(parsed.inner);
}

// The endpoint a datagram came from, by address (its source port is a flow
// hash). Unicast: one of the configured remotes or nobody. Multicast: any
// member of the group, remembered at its address and the group's port.
std::optional<std::uint16_t> VxlanPort::endpoint_of(const sockaddr_storage& from) {
  for (std::size_t i = 0; i < endpoints_.size(); ++i)
    if (same_host(from, endpoints_[i])) return static_cast<std::uint16_t>(i);
  if (!config_.group || from.ss_family != AF_INET || endpoints_.size() >= kMaxEndpoints) return std::nullopt;
  SockAddr member;
  std::memcpy(&member.storage, &from, sizeof(sockaddr_in));
  member.length = sizeof(sockaddr_in);
  reinterpret_cast<sockaddr_in*>(&member.storage)->sin_port = htons(config_.group->port());
  endpoints_.push_back(member);
  log::info("{}: port {} vxlan: endpoint {} joined through the group", net_.name(), id(), member.to_string());
  return static_cast<std::uint16_t>(endpoints_.size() - 1);
}

bool VxlanPort::is_own(const sockaddr_storage& from) const {
  if (!config_.group) return false;
  for (const auto& self : sender_addrs_)
    if (port_of(from) == self.port() && same_host(from, self)) return true;
  return false;
}

std::uint8_t VxlanPort::sender_for(wire::Bytes frame) const {
  return static_cast<std::uint8_t>(inner_flow_hash(frame) % kSourcePorts);
}

void VxlanPort::send_to_peer(wire::Bytes frame) {
  const std::uint8_t sender = sender_for(frame);
  if (const auto known = fdb_.lookup(wire::MacAddr::from_bytes(frame.first(6)), monotonic_now())) {
    queue_to(*known, sender, frame);
  } else if (config_.group) {
    queue_to(kToGroup, sender, frame);
  } else {
    // Head-end replication: one copy per configured remote.
    for (std::size_t i = 0; i < config_.remotes.size(); ++i) queue_to(static_cast<std::uint16_t>(i), sender, frame);
  }
}

void VxlanPort::queue_to(std::uint16_t endpoint, std::uint8_t sender, wire::Bytes frame) {
  std::array<std::uint8_t, kRecordPrefix> prefix{};
  const Route route{sender, 0, endpoint, 0};
  std::memcpy(prefix.data(), &route, sizeof route);
  wire::emit_vxlan_header(wire::MutBytes(prefix).subspan(sizeof(Route)), config_.vni);
  queue_out(prefix, frame);
}

const SockAddr& VxlanPort::destination(std::uint16_t endpoint) const {
  return endpoint == kToGroup ? *config_.group : endpoints_[endpoint];
}

// Sends queued datagrams in runs that share a sending socket, one sendmmsg
// per run.
bool VxlanPort::write_queued() {
  while (!out_.empty()) {
    int sender = -1;
    batch_.start_sending();
    out_.for_each([&](const FrameQueue::Record& r) {
      Route route;
      std::memcpy(&route, r.bytes.data(), sizeof route);
      if (sender >= 0 && route.sender != sender) return false;
      sender = route.sender;
      const SockAddr& to = destination(route.endpoint);
      return batch_.add(r.bytes.subspan(sizeof(Route)), to.get(), to.length);
    });
    const int sent = batch_.send(senders_[static_cast<std::size_t>(sender)].get());
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return true;
      // This datagram cannot go (too big for UDP, no route to the endpoint):
      // drop it, as a cable would, and carry on with the rest.
      drop_unsendable_front(errno == EMSGSIZE ? counters_.drop_oversize : counters_.drop_down, kRecordPrefix);
      continue;
    }
    for (int i = 0; i < sent; ++i) out_.pop();
  }
  return true;
}

}  // namespace vnet
