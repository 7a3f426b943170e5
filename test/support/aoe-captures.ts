/**
 * The real AoE captures of src/wire/aoe/testdata (iPXE and vblade; regenerate with
 * test/support/aoe-capture.ts, see the README there), for the golden and fuzz tests, and the
 * names the capture script gave its requests.
 */
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinkType, readPcap } from './pcap.js';
import { decodeAoeBody, decodeAoeFrame } from '../../src/wire/aoe/aoe-frame.js';
import { AoeCommand, AoeFlag } from '../../src/wire/aoe/aoe-header.js';
import { AtaFlag, effectiveLba } from '../../src/wire/aoe/ata-command.js';

/** Works from test/support (tsx) and dist/test/support (compiled): fixtures stay in the source tree. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..').replace(/[\\/]dist$/, '');
export const AOE_TESTDATA = join(root, 'src', 'wire', 'aoe', 'testdata');

/** The config string vblade-commands.pcap sets with Query Config force set. */
export const CAPTURE_CONFIG = 'diskless:aoe-fixture';
/** A MAC that is not the raw peer's: the source of the requests vblade's reservation refuses. */
export const SPOOFED_MAC = '020000000099';
/** Shelf and slot of the vblade in vblade-commands.pcap (ipxe-sanboot.pcap uses e1.1). */
export const COMMANDS_TARGET = { shelf: 7, slot: 3 } as const;
/** Tags of vblade-commands.pcap's requests: this plus the request's index. */
export const COMMANDS_TAG_BASE = 0x0d150000;

export interface CapturedAoeFrame {
  /** Position in the capture, from 0. */
  readonly index: number;
  /** Seconds since the epoch. */
  readonly time: number;
  /** The Ethernet frame as captured (no FCS). */
  readonly bytes: Buffer;
}

/** The .pcap files of the AoE testdata, sorted. */
export function aoeCaptureFiles(): string[] {
  return readdirSync(AOE_TESTDATA).filter((f) => f.endsWith('.pcap')).sort();
}

/** Every Ethernet frame of one capture, in order. */
export function capturedAoeFrames(file: string): CapturedAoeFrame[] {
  return readPcap(join(AOE_TESTDATA, file))
    .filter((r) => r.linkType === LinkType.ethernet)
    .map((r, index) => ({ index, time: r.time, bytes: r.data }));
}

const mac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const hex = (n: number, width = 2): string => `0x${n.toString(16).padStart(width, '0')}`;
const COMMAND_NAMES: Record<number, string> = { [AoeCommand.ata]: 'ATA', [AoeCommand.queryConfig]: 'QueryConfig', [AoeCommand.macMaskList]: 'MacMaskList', [AoeCommand.reserveRelease]: 'ReserveRelease' };
const CCMD_NAMES = ['read', 'test-exact', 'test-prefix', 'set-if-empty', 'force-set'];
const DCMD_NAMES = ['none', 'add', 'delete'];
const RCMD_NAMES = ['read', 'set', 'force-set'];

/**
 * One line describing an AoE frame, for the golden dumps (testdata/<capture>.txt): length,
 * addresses, the AoE header and the decoded argument (sector data by length only).
 */
export function formatAoeFrame(frame: Buffer): string {
  const f = decodeAoeFrame(frame);
  const h = f.header;
  const flags = [h.flags & AoeFlag.response ? 'R' : '', h.flags & AoeFlag.error ? 'E' : ''].join('') || '-';
  const head = `${frame.length}B ${mac(f.source)} > ${mac(f.destination)} ver ${h.version} flags ${flags} error ${h.error} e${h.shelf}.${h.slot} tag ${hex(h.tag, 8)} ${COMMAND_NAMES[h.command] ?? `command ${h.command}`}`;
  const body = decodeAoeBody(h.command, f.arg);
  if (body === undefined) return `${head} arg ${f.arg.length}B`;
  switch (body.command) {
    case AoeCommand.ata: {
      const a = body.ata;
      const response = (h.flags & AoeFlag.response) !== 0;
      const aflags = [a.flags & AtaFlag.extended ? 'E' : '', a.flags & AtaFlag.device ? 'D' : '', a.flags & AtaFlag.async ? 'A' : '', a.flags & AtaFlag.write ? 'W' : ''].join('') || '-';
      const regs = response ? `error ${hex(a.featureOrError)} count ${a.sectorCount} status ${hex(a.commandOrStatus)}` : `feature ${hex(a.featureOrError)} count ${a.sectorCount} cmd ${hex(a.commandOrStatus)}`;
      return `${head} aflags ${aflags} ${regs} lba ${hex(a.lba, 12)} (effective ${effectiveLba(a)}) data ${a.data.length}B`;
    }
    case AoeCommand.queryConfig: {
      const q = body.queryConfig;
      return `${head} bufcnt ${q.bufferCount} fw ${hex(q.firmwareVersion, 4)} scnt ${q.sectorCount} aoever ${q.aoeVersion} ccmd ${CCMD_NAMES[q.command] ?? q.command} config ${JSON.stringify(q.config.toString('latin1'))}`;
    }
    case AoeCommand.macMaskList: {
      const m = body.macMaskList;
      return `${head} mcmd ${m.command === 0 ? 'read' : m.command === 1 ? 'edit' : m.command} merror ${m.error} count ${m.count} [${m.directives.map((d) => `${DCMD_NAMES[d.command] ?? d.command} ${mac(d.mac)}`).join(', ')}]`;
    }
    case AoeCommand.reserveRelease: {
      const r = body.reserveRelease;
      return `${head} rcmd ${RCMD_NAMES[r.command] ?? r.command} [${r.macs.map(mac).join(', ')}]`;
    }
  }
}
