#!/bin/sh
# vnet's guest kit: builds a tiny initramfs for a real QEMU guest from
# Debian packages only: busybox-static (udhcpc, nc, wget, ping, tftp,
# httpd...), iperf3 with its libraries when it is installed, the NIC
# driver's kernel modules (of the installed Debian kernel, not the running
# one), and guest/init, which runs the script given on the kernel command
# line and prints markers on the serial console. `vnet demo` and the
# booted-guest tests use it.
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

# iperf3 with the shared libraries it loads, apart in /opt/iperf3 behind a
# wrapper: a libc.so.6 in /lib would be picked up by busybox-static's name
# lookups (glibc's NSS loads modules even from a static binary) and crash
# them.
if iperf3=$(command -v iperf3); then
  mkdir -p "$root/opt/iperf3" "$root/usr/bin"
  cp "$iperf3" "$root/opt/iperf3/iperf3"
  for lib in $(ldd "$iperf3" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
    cp -L "$lib" "$root/opt/iperf3/"
  done
  loader=$(basename "$(ldd "$iperf3" | sed -n 's/^[[:space:]]*\(\/[^ ]*ld-linux[^ ]*\) .*/\1/p')")
  printf '#!/bin/sh\nexec /opt/iperf3/%s --library-path /opt/iperf3 /opt/iperf3/iperf3 "$@"\n' "$loader" \
    > "$root/usr/bin/iperf3"
  chmod 755 "$root/usr/bin/iperf3"
fi

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
