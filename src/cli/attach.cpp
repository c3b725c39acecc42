#include "cli/attach.hpp"

#include <fmt/format.h>

namespace vnet::cli {
namespace {

// QEMU's option syntax doubles a comma inside a value.
std::string qemu_value(const std::string& v) {
  std::string out;
  for (char c : v) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

std::string xml_attr(const std::string& v) {
  std::string out;
  for (char c : v) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string qemu_netdev(const nlohmann::json& l) {
  if (l["type"] == "unix")
    return "stream,id=n0,server=off,addr.type=unix,addr.path=" + qemu_value(l["path"].get<std::string>());
  return "stream,id=n0,server=off,addr.type=inet,addr.host=" + l["host"].get<std::string>() +
         ",addr.port=" + l["port_number"].get<std::string>();
}

}  // namespace

std::string attach_text(const nlohmann::json& reply, AttachFormat format) {
  const std::string mac = reply["mac"];
  if (reply.contains("tap")) {
    // kernel-nat: a persistent TAP already in the host bridge.
    const std::string tap = reply["tap"];
    if (format == AttachFormat::Qemu)
      return fmt::format("-netdev tap,id=n0,ifname={},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={}\n",
                         tap, mac);
    return fmt::format(
        "<interface type='ethernet'>\n"
        "  <mac address='{}'/>\n"
        "  <target dev='{}' managed='no'/>\n"
        "  <model type='virtio'/>\n"
        "</interface>\n",
        mac, xml_attr(tap));
  }
  const auto& l = reply["listener"];
  if (format == AttachFormat::Qemu)
    return fmt::format("-netdev {} -device virtio-net-pci,netdev=n0,mac={}\n", qemu_netdev(l), mac);
  for (const auto& inet : reply.value("listeners", nlohmann::json::array())) {
    if (inet["type"] != "inet") continue;
    // libvirt's "client" interface is QEMU's -netdev socket,connect: the same framing as a stream listener.
    return fmt::format(
        "<interface type='client'>\n"
        "  <mac address='{}'/>\n"
        "  <source address='{}' port='{}'/>\n"
        "  <model type='virtio'/>\n"
        "</interface>\n",
        mac, xml_attr(inet["host"].get<std::string>()), xml_attr(inet["port_number"].get<std::string>()));
  }
  // libvirt has no interface type for a unix stream socket: pass QEMU's own
  // options through (the domain element needs
  // xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0').
  return fmt::format(
      "<qemu:commandline>\n"
      "  <qemu:arg value='-netdev'/>\n"
      "  <qemu:arg value='{}'/>\n"
      "  <qemu:arg value='-device'/>\n"
      "  <qemu:arg value='virtio-net-pci,netdev=n0,mac={}'/>\n"
      "</qemu:commandline>\n",
      xml_attr(qemu_netdev(l)), mac);
}

}  // namespace vnet::cli
