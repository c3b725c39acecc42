#include "nat/icmp.hpp"

namespace vnet::nat {

struct IcmpTranslator::State {
  GuestIo& io;
};

IcmpTranslator::IcmpTranslator(GuestIo& io) : state_(new State{io}) {}
IcmpTranslator::~IcmpTranslator() = default;
void IcmpTranslator::on_packet(const wire::Ipv4Packet&, wire::Ipv4Addr) { state_->io.counters().drop_unsupported++; }

}  // namespace vnet::nat
