import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { labBoot, labUp } from '../../src/cli/lab-command.js';
import { BootStage } from '../../src/lab/boot-timeline.js';
import { Lab } from '../../src/lab/lab.js';
import { LAB_DEMO_MAC } from '../../src/lab/lab-config.js';

// The whole chain with real UEFI firmware PXE and every server ours: OVMF's own PXE client on
// a virtio NIC without iPXE ROM asks our DHCP (option 93 arch 7, no option 175), gets
// ipxe.efi, fetches it from our TFTP server, iPXE asks DHCP again (option 175) and gets the
// HTTP script URL, the script sanboots the demo volume from our iSCSI target, and the demo
// disk's \EFI\BOOT\BOOTX64.EFI prints the marker. OVMF under TCG is slow: ~14 s here.
const NS = 'du-e2e-uefi';

const sink = () =>
  new Writable({
    write(_chunk, _enc, done) {
      done();
    },
  });

/** Our server's Prometheus text, fetched from inside the lab namespace. */
async function metrics(lab: Lab): Promise<string> {
  const script = `fetch('http://${lab.address}:8080/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  return lab.exec(process.execPath, ['-e', script]);
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('UEFI firmware PXE (OVMF, no iPXE ROM): DHCP arch 7 → TFTP snponly.efi → iPXE → HTTP script → iSCSI → BOOTX64.EFI marker', { timeout: 180_000 }, async (t) => {
  const lab = new Lab({ namespace: NS });
  t.after(() => lab.down());
  await lab.down();
  const up = await labUp({ namespace: NS, out: sink() });
  assert.equal(up.config.bootFiles.uefiPreferSnp, true, 'the lab serves snponly.efi to UEFI firmware');
  const uefiFile = up.config.bootFiles.uefiSnp;
  const before = await metrics(lab);
  assert.equal(metric(before, 'diskless_tftp_requests_total', '{op="read"}'), 0);

  const run = await labBoot({ namespace: NS, mac: LAB_DEMO_MAC, uefi: true, nativePxe: true, timeoutMs: 90_000, out: sink() });
  assert.equal(run.outcome, 'marker');
  const at = (stage: BootStage) => {
    const ms = run.events.find((e) => e.stage === stage)?.atMs;
    assert.ok(ms !== undefined, `stage ${stage} reached; stages: ${run.events.map((e) => e.stage).join(', ')}`);
    return ms;
  };
  const order = [BootStage.Firmware, BootStage.Pxe, BootStage.PxeDhcp, BootStage.Nbp, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker];
  for (let i = 1; i < order.length; i++) assert.ok(at(order[i - 1]!) <= at(order[i]!), `${order[i - 1]} before ${order[i]}`);

  // The firmware was told the UEFI boot file (arch 7 → bootFiles.uefiSnp in the lab) and downloaded all of it.
  const tftpFile = join(up.config.server.dataDir, 'tftp', uefiFile);
  const size = (await stat(tftpFile)).size;
  const nbp = run.events.find((e) => e.stage === BootStage.Nbp)!;
  assert.equal(nbp.detail.file, uefiFile);
  assert.equal(Number(nbp.detail.size), size, 'EDK2 learnt the size from our tsize OACK');
  // Both DHCP clients got the same lease from us.
  const address = run.events.find((e) => e.stage === BootStage.PxeDhcp)!.detail.address ?? '';
  assert.match(address, /^10\.77\.0\.\d+$/);
  assert.ok(run.transcript.map((c) => c.text).join('').includes(`net0: ${address}/255.255.255.0`), `iPXE configured ${address} too`);
  // iPXE then came back to DHCP and was given the HTTP script, not the EFI binary again.
  assert.match(run.events.find((e) => e.stage === BootStage.Script)!.detail.url ?? '', /^http:\/\/10\.77\.0\.1:8080\/boot\/52-54-00-d1-5c-01\.ipxe$/);
  // The marker comes from BOOTX64.EFI after iPXE handed over the SAN disk (the MBR code cannot
  // run under UEFI). It prints through the UART, then through ConOut; the run stops at the first.
  const console = run.transcript.map((c) => c.text).join('');
  const handover = console.indexOf('Booting from SAN device 0x80');
  assert.ok(handover > 0 && console.indexOf('DISKLESS-OK', handover) > handover, console.slice(handover));

  // Our servers saw it: two DHCP exchanges (EDK2, then iPXE), EDK2's tsize probe (which it
  // aborts with an ERROR, counted as client_error) and one complete transfer of the whole file.
  const m = await metrics(lab);
  assert.equal(metric(m, 'diskless_dhcp_requests_total', '{type="1"}'), 2, 'two DHCPDISCOVERs');
  assert.equal(metric(m, 'diskless_dhcp_replies_total', '{type="5"}'), 2, 'two DHCPACKs');
  assert.equal(metric(m, 'diskless_tftp_requests_total', '{op="read"}'), 2);
  assert.equal(metric(m, 'diskless_tftp_transfers_total', '{result="complete"}'), 1);
  const blocks = metric(m, 'diskless_tftp_blocks_sent_total');
  assert.ok(blocks >= Math.ceil(size / 1468), `blocks sent ${blocks} cover ${size} bytes`);
  assert.ok(metric(m, 'diskless_http_requests_total', '{route="script",status="200"}') >= 1);
  // No VM or tap is left behind.
  const status = await lab.status();
  assert.deepEqual(status.taps, []);
  assert.equal(status.processes.some((p) => p.command.includes('qemu-system')), false);
});
