#!/bin/sh
# Builds a tiny initramfs for a real QEMU guest of vnet's NAT tests:
# busybox-static, the NIC driver's kernel modules (of the installed Debian
# kernel, not the running one), and guest/init, which configures the NIC by
# DHCP, fetches a URL and prints markers on the serial console.
#
# usage: mkinitramfs.sh OUT.cpio.gz KVER virtio|e1000
set -eu
out=$1 kver=$2 nic=$3
here=$(cd "$(dirname "$0")" && pwd)
moddir=/lib/modules/$kver
[ -d "$moddir" ] || { echo "no $moddir" >&2; exit 1; }
busybox=$(command -v busybox)
# Debian's busybox-static is the one at /bin/busybox; refuse a dynamic one.
if ldd "$busybox" >/dev/null 2>&1; then echo "$busybox is not static" >&2; exit 1; fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/etc/udhcpc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
         "$root/run" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/etc/udhcpc/default.script"
chmod 755 "$root/init" "$root/etc/udhcpc/default.script"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"

case $nic in
  virtio) mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net" ;;
  e1000) mods="e1000" ;;
  *) echo "nic: virtio or e1000" >&2; exit 1 ;;
esac
: > "$root/lib/modules/order"
for m in $mods; do
  path=$(modinfo -k "$kver" -n "$m" 2>/dev/null || true)
  case $path in
    /*) ;;
    *) continue ;;  # built into the kernel
  esac
  case $path in
    *.ko) cp "$path" "$root/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$path" > "$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$path" > "$root/lib/modules/$m.ko" ;;
    *) echo "unknown module format $path" >&2; exit 1 ;;
  esac
  echo "$m" >> "$root/lib/modules/order"
done

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out"
