#!/usr/bin/env bash
# Installs what `make up` and `make test` need on a fresh Debian 12 machine: the Debian
# packages (QEMU with iPXE ROMs, Debian's ipxe binaries, the peers we test and benchmark
# against) and the npm packages. Idempotent and quick when everything is present.
# The peers' own services (tgt, iscsid, atftpd) are not started by the install: the lab
# starts its own copies inside network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  qemu-system-x86 ipxe-qemu ipxe qemu-utils   # the lab's VMs, their iPXE ROMs, iPXE boot files
  iproute2 tcpdump                              # namespaces, veth, taps, bridges; captures
  libiscsi-bin open-iscsi tgt                   # iSCSI interop (iscsi-ls, iscsistart) and the tgt peer
  vblade                                        # AoE peer target (vblade) for captures, the lab and bench:aoe
  qemu-block-extra                              # qemu-io/qemu-img iscsi:// (block-iscsi module) for iSCSI interop tests
  dnsmasq-base atftpd atftp                     # DHCP/TFTP peers, TFTP interop client
  curl                                          # a second TFTP client (tftp://) in the interop tests
  python3 make g++                              # node-gyp toolchain for the native addon
  busybox-static                                # udhcpc: a real DHCP client for the DHCP interop tests
  ovmf                                          # UEFI firmware for `diskless lab boot --uefi`
  mtools dosfstools                             # read back our FAT images in tests (mdir, mtype, fsck.fat)
  cpio e2fsprogs                                # the lab's diskless Linux: initramfs (cpio newc), ext4 root image (mkfs.ext4 -d)
  zfs-fuse                                      # real ZFS for the zfs storage driver's tests (daemon started by test/support/zfs-fuse.ts)
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install Debian packages (run as root or with sudo)" >&2; exit 1; fi
  # Keep the peers' daemons from starting on install (they would take ports 69/3260).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; own_policy=1; fi
  trap '[ $own_policy = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages: reinstall when the lock file is newer than the installed tree.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit
fi
