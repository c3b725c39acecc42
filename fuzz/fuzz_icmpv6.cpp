// ICMPv6 Neighbor Discovery messages from guests: the view and its option
// walker must stay in bounds on any input, and every option the accessors
// hand out must lie inside the message.
#include <cstddef>
#include <cstdint>

#include "fuzz_sink.hpp"
#include "wire/icmpv6.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  auto m = NdpMessage::parse(in);
  if (!m) return 0;
  // Type-specific accessors are valid for their type only, as in the gateway.
  if (m->type() == Icmpv6Type::RouterAdvert) {
    sink(m->cur_hop_limit() + m->ra_flags() + m->router_lifetime() + m->reachable_time() + m->retrans_timer());
  }
  if (m->type() != Icmpv6Type::RouterSolicit && m->type() != Icmpv6Type::RouterAdvert) sink(m->target().octets[15]);
  if (m->type() == Icmpv6Type::NeighborAdvert) sink(m->na_flags());
  if (m->type() == Icmpv6Type::Redirect) sink(m->redirect_dest().octets[15]);
  if (auto mac = m->source_lladdr()) sink(mac->as_u64());
  if (auto mac = m->target_lladdr()) sink(mac->as_u64());
  NdpOptionReader r(m->options());
  while (auto o = r.next()) {
    check(o->data.data() >= data && o->data.data() + o->data.size() <= data + size);
    if (o->type == ndp_opt::kPrefixInfo) {
      if (auto p = NdpPrefixInfo::parse(o->data)) sink(p->prefix_len + p->valid_lifetime);
    } else if (o->type == ndp_opt::kRdnss) {
      if (auto v = NdpRdnssView::parse(o->data)) {
        for (std::size_t i = 0; i < v->count(); ++i) sink(v->at(i).octets[0]);
      }
    }
  }
  check(!r.error());
  return 0;
}
