// What the NAT's protocol handlers (dhcp, dns, icmp, udp, tcp, tftp) need
// from the gateway: a way to send packets to guests, the event loop, the
// settings and the counters. The gateway builds the Ethernet and IP headers;
// handlers write their transport segment in place, so a TCP segment read from
// a host socket is copied once, into the frame that leaves. Addresses of
// guests and remotes are family-agnostic (wire::IpAddr); a gateway that
// cannot send a family returns false.
#pragma once

#include <cstdint>

#include "core/event_loop.hpp"
#include "nat/config.hpp"
#include "nat/flow.hpp"
#include "wire/bytes.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::nat {

struct NatCounters {
  std::uint64_t arp_replies = 0, arp_requests_sent = 0;
  std::uint64_t icmp_gateway_replies = 0, icmp_echo_out = 0, icmp_echo_in = 0, icmp_unavailable = 0;
  std::uint64_t udp_flows = 0, udp_out = 0, udp_in = 0;
  std::uint64_t udp_out_runs = 0;        // sends that carried several guest datagrams (UDP_SEGMENT)
  std::uint64_t tcp_flows = 0, tcp_refused = 0, tcp_rst_sent = 0;
  std::uint64_t dhcp_acks = 0, dhcp_naks = 0, dhcp_exhausted = 0;
  std::uint64_t dns_queries = 0, dns_answers = 0, dns_timeouts = 0;
  std::uint64_t tftp_transfers = 0, tftp_refused = 0;
  // Dropped input, by cause.
  std::uint64_t drop_malformed = 0;      // failed to parse
  std::uint64_t drop_bad_checksum = 0;
  std::uint64_t drop_fragment = 0;       // IP fragments (either family) are not reassembled
  std::uint64_t drop_unknown_guest = 0;  // no ARP entry to answer to
  std::uint64_t drop_restricted = 0;     // --restrict on
  std::uint64_t drop_host_loopback = 0;  // --host-loopback off
  std::uint64_t drop_flow_limit = 0;     // any flow cap (the five below, summed)
  std::uint64_t drop_guest_dns = 0;      // the guest's share of pending DNS queries
  std::uint64_t drop_guest_flows = 0;    // the guest's flow cap
  std::uint64_t drop_net_flows = 0;      // the network's flow cap
  std::uint64_t drop_guest_connects = 0; // the guest's pending-connect cap
  std::uint64_t drop_net_connects = 0;   // the network's pending-connect cap
  // TCP without SO_PEEK_OFF: bytes peeked to send tcp_fallback_sent bytes
  // (their ratio shows the fallback's cost stays linear).
  std::uint64_t tcp_fallback_peeked = 0, tcp_fallback_sent = 0;
  // Steps that widened a host socket's receive buffer for a slow guest link.
  std::uint64_t tcp_host_window_widened = 0;
  // Guest segments past a hole: kept until it is filled, or refused (the
  // flow's or the network's reassembly memory is full).
  std::uint64_t tcp_ooo_kept = 0, tcp_ooo_refused = 0;
  std::uint64_t drop_unsupported = 0;    // protocol vnet does not translate
  std::uint64_t drop_spoofed = 0;        // source address another guest's, or not the network's
  std::uint64_t drop_martian = 0;        // destination never translated (0/8, 127/8, 169.254/16, 224/4, 240/4)
  std::uint64_t drop_neigh_limit = 0;    // address not bound: guest, port or table at its limit
  std::uint64_t neigh_mac_conflict = 0;  // a MAC bound on one port seen on another
  std::uint64_t dhcp_chaddr_mismatch = 0;  // DHCP chaddr is not the frame's source MAC
  std::uint64_t dhcp_port_limit = 0;     // DHCP refused: the port holds max_leases_per_port
  std::uint64_t tftp_guest_limit = 0;    // TFTP refused: the guest runs its maximum of transfers
  // IPv6 data path.
  std::uint64_t ipv6_in = 0;             // IPv6 packets from guests, parsed
  std::uint64_t drop_ipv6_extension = 0; // extension headers over limits, malformed or to be discarded
  std::uint64_t drop_too_big = 0;        // a reply larger than the MTU after its IPv6 header
  // IPv6 control plane (nat/ndp, nat/dhcp6).
  std::uint64_t ndp_ra_sent = 0, ndp_na_sent = 0, ndp_ns_sent = 0;
  std::uint64_t drop_ndp_invalid = 0;      // hop limit not 255, bad code/options, RFC 4861 validity
  std::uint64_t ndp_guest_router_msgs = 0; // RAs and redirects from guests, ignored
  std::uint64_t dhcp6_replies = 0, dhcp6_no_addrs = 0;
  std::uint64_t dhcp6_port_limit = 0;      // DHCPv6 refused: the port holds max_leases_per_port
};

class GuestIo {
 public:
  virtual ~GuestIo() = default;

  virtual EventLoop& loop() = 0;
  virtual const NatConfig& config() const = 0;
  virtual NatCounters& counters() = 0;

  // Room for one transport segment, valid until the next send.
  virtual wire::MutBytes l4_buffer() = 0;
  // Sends the first `len` bytes of l4_buffer() as an IP packet from src to
  // dst (a guest). The segment's checksum must already be filled in.
  // Returns false if the guest's MAC is unknown (an ARP request is sent).
  virtual bool send_l4_in_place(wire::IpAddr src, wire::IpAddr dst, wire::IpProtocol proto, std::size_t len) = 0;
  // Copies payload behind a UDP header (checksum computed) and sends it;
  // dst may be the broadcast address (DHCP).
  virtual bool send_udp(wire::IpAddr src, std::uint16_t sport, wire::IpAddr dst, std::uint16_t dport,
                        wire::Bytes payload) = 0;
  // The guest that owns an address: the MAC bound to it, if any. Per-guest
  // limits count against this MAC.
  virtual const wire::MacAddr* guest_mac(wire::IpAddr guest) const = 0;
  // The network's flow accounting, shared by the translators.
  virtual FlowTable& flows() = 0;

  // Offloads toward a guest (TCP data). A segment may carry up to
  // tcp_offload_room(guest) bytes of payload, built in l4_offload_buffer()
  // with its checksum field holding only the pseudo-header sum;
  // send_tcp_offloaded() sends it as one frame that the guest's kernel (a
  // TAP that takes offloads: one write for ~44 segments) or else the switch
  // cuts into `mss`-sized frames, completing the checksums. A room of 0:
  // not offered for this guest, send ordinary segments from l4_buffer().
  virtual std::size_t tcp_offload_room(const wire::IpAddr& guest) const {
    (void)guest;
    return 0;
  }
  virtual wire::MutBytes l4_offload_buffer() { return l4_buffer(); }
  virtual bool send_tcp_offloaded(const wire::IpAddr& src, const wire::IpAddr& dst, std::size_t len,
                                  std::uint16_t mss) {
    (void)src, (void)dst, (void)len, (void)mss;
    return false;
  }
  // True while the guest's segment being handled came with its transport
  // checksum left unfilled (checksum offload or a TSO segment from a TAP):
  // there is nothing to verify, the guest's own kernel built it in memory.
  virtual bool l4_checksum_offloaded() const { return false; }
  // Bytes the guest's port can still queue toward it (SIZE_MAX: unknown, or
  // unbounded). TCP sizes data in flight to the guest from it: the port
  // drops what does not fit, which would cost the flow a timeout.
  virtual std::size_t guest_queue_room(const wire::IpAddr& guest) const {
    (void)guest;
    return SIZE_MAX;
  }
};

}  // namespace vnet::nat
