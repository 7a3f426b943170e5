#!/bin/sh
# Re-captures the TFTP golden fixtures (root; needs qemu-system-x86, ipxe-qemu, dnsmasq-base,
# atftp, curl, tcpdump and a built tree: npm run build). Everything runs in namespace dt-tcap.
#   ipxe-rrq.pcap   QEMU's e1000 iPXE ROM: DHCP from dnsmasq (--dhcp-boot) then a TFTP fetch
#                   of boot.ipxe from our server (RRQ octet blksize 1432 tsize 0, OACK, DATA, ACKs)
#   atftp-rrq.pcap  atftp --option "blksize 1468" --option "windowsize 4" --get (lo), a 3000-byte file
#   curl-rrq.pcap   curl tftp:// (lo), same file
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../../.." && pwd)
NS=dt-tcap
WORK=$(mktemp -d)
cleanup() {
  for p in $(cat "$WORK"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  ip netns del $NS 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS tuntap add dev dt-ttap0 mode tap
ip -n $NS addr add 10.213.9.1/24 dev dt-ttap0
ip -n $NS link set dt-ttap0 up
mkdir "$WORK/root"
printf '#!ipxe\necho DT-TFTP-CAPTURE-OK\n' > "$WORK/root/boot.ipxe"
head -c 3000 /dev/zero | tr '\0' 'x' > "$WORK/root/file3000"
cat > "$WORK/server.mjs" <<JS
import { TftpServer } from '$REPO/dist/src/services/tftp/tftp-server.js';
import { silentLogger } from '$REPO/dist/src/observe/logger.js';
import { Metrics } from '$REPO/dist/src/observe/metrics.js';
const s = new TftpServer({ root: '$WORK/root', address: '0.0.0.0', port: 69, log: silentLogger(), metrics: new Metrics() });
await s.start();
process.on('SIGTERM', async () => { await s.stop(); process.exit(0); });
JS
ip netns exec $NS node "$WORK/server.mjs" & echo $! > "$WORK/server.pid"
ip netns exec $NS dnsmasq --keep-in-foreground --port=0 --interface=dt-ttap0 --bind-interfaces \
  --dhcp-range=10.213.9.100,10.213.9.150 --dhcp-boot=boot.ipxe --pid-file="$WORK/dnsmasq.pidfile" \
  --dhcp-leasefile="$WORK/leases" & echo $! > "$WORK/dnsmasq.pid"
ip netns exec $NS tcpdump -U --immediate-mode -i dt-ttap0 -s 0 -w "$HERE/ipxe-rrq.pcap" 'udp and not port 67 and not port 68' & echo $! > "$WORK/tcpdump1.pid"
sleep 1
ip netns exec $NS timeout 60 qemu-system-x86_64 -accel tcg -m 128 -nographic -no-reboot -boot n \
  -netdev tap,id=n0,ifname=dt-ttap0,script=no,downscript=no \
  -device e1000,netdev=n0,mac=52:54:00:d7:00:01 > "$WORK/console.txt" 2>&1 & QEMU=$!
echo $QEMU > "$WORK/qemu.pid"
i=0; while ! grep -q DT-TFTP-CAPTURE-OK "$WORK/console.txt"; do i=$((i+1)); [ $i -lt 600 ] || { cat "$WORK/console.txt"; exit 1; }; sleep 0.1; done
kill $QEMU; sleep 1.5; kill "$(cat "$WORK/tcpdump1.pid")"
ip netns exec $NS tcpdump -U --immediate-mode -i lo -s 0 -w "$HERE/atftp-rrq.pcap" 'udp' & echo $! > "$WORK/tcpdump2.pid"
sleep 1
ip netns exec $NS atftp --option "blksize 1468" --option "windowsize 4" --get -r file3000 -l "$WORK/a" 127.0.0.1 69
sleep 1.5; kill "$(cat "$WORK/tcpdump2.pid")"
ip netns exec $NS tcpdump -U --immediate-mode -i lo -s 0 -w "$HERE/curl-rrq.pcap" 'udp' & echo $! > "$WORK/tcpdump3.pid"
sleep 1
ip netns exec $NS curl -s -o "$WORK/c" tftp://127.0.0.1/file3000
sleep 1.5; kill "$(cat "$WORK/tcpdump3.pid")"
sleep 0.5
echo "captured: $(ls "$HERE"/*.pcap)"
