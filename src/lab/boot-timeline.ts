import { ConsoleLines, type ConsoleLinesOptions } from './console-lines.js';

/**
 * Reads a booting machine's serial console and tells when each boot stage was reached. Pure:
 * the caller supplies each chunk with its arrival time (ms since power-on), so the same code
 * serves a live QEMU console, a recorded transcript, and tests. The console strings it knows
 * are the ones SeaBIOS 1.16, iPXE 1.0.0+git-20190125 (Debian ipxe-qemu) and OVMF (Debian
 * 2022.11, including its own PXE client) print; the table is in docs/lab.md.
 */

/**
 * Boot stages in the order a successful iSCSI boot reaches them. `pxe`, `pxe-dhcp` and `nbp`
 * only occur with firmware PXE (OVMF's own client loading ipxe.efi over TFTP); a NIC with the
 * iPXE option ROM goes from `firmware` straight to `ipxe`.
 */
export const BootStage = {
  /** t = 0: the VM process was started. */
  PowerOn: 'power-on',
  /** System firmware banner (SeaBIOS, or OVMF's first output). */
  Firmware: 'firmware',
  /** The firmware's own PXE client started (EDK2: ">>Start PXE over IPv4."); firmware PXE only. */
  Pxe: 'pxe',
  /** The firmware's PXE client got its address (EDK2: "Station IP address is a.b.c.d"). */
  PxeDhcp: 'pxe-dhcp',
  /** The firmware downloaded the network boot program over TFTP (EDK2: "NBP file downloaded successfully."). */
  Nbp: 'nbp',
  /** iPXE is running (option ROM banner, or its version banner when chainloaded). */
  Ipxe: 'ipxe',
  /** iPXE opened the NIC ("net0: <mac> using 82540em ... (open)"). */
  Nic: 'nic',
  /** DHCP finished: "Configuring (net0 <mac>)... ok" or the first "net0: a.b.c.d/mask". */
  Dhcp: 'dhcp',
  /** The boot file or script was downloaded: "<url or name>... ok". */
  Script: 'script',
  /** iPXE registered and booted the SAN disk ("Registered SAN device 0x80"). */
  San: 'san',
  /** The boot marker was printed (default "DISKLESS-OK", from the demo disk's MBR). */
  Marker: 'marker',
  /** A line that means the boot failed (see FAILURE_PATTERNS). */
  Failure: 'failure',
} as const;
export type BootStage = (typeof BootStage)[keyof typeof BootStage];

/** One stage reached. `line` is the console line that showed it (escape sequences removed). */
export interface BootEvent {
  readonly stage: BootStage;
  /** Milliseconds since power-on when the chunk completing the match arrived. */
  readonly atMs: number;
  readonly line: string;
  /**
   * Facts read from the line: `mac`, `address`, `url`, `device`, `error` (iPXE or PXE error
   * code), `version`, `protocol`; for `nbp`, `file` and `size` from the lines before it.
   */
  readonly detail: Readonly<Record<string, string>>;
}

/** Where a boot stands: still going, reached the marker, or failed. */
export type BootOutcome = 'running' | 'marker' | 'failed';

interface StageRule {
  readonly stage: BootStage;
  readonly pattern: RegExp;
  /** Names of the capture groups, in order, copied into `detail`. */
  readonly groups?: readonly string[];
  /**
   * Also try the line while it is still being printed: for a line the firmware leaves open
   * (no CR/LF) until its next output, which may come seconds later.
   */
  readonly partial?: boolean;
}

const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
const IPV4 = '\\d{1,3}(?:\\.\\d{1,3}){3}';

/** Stage patterns, tried on every logical console line (first match of each stage wins). */
export const STAGE_PATTERNS: readonly StageRule[] = [
  { stage: BootStage.Firmware, pattern: /SeaBIOS \(version ([^)]+)\)/, groups: ['version'] },
  // OVMF prints nothing on serial before its boot manager: its first line is a BdsDxe one.
  { stage: BootStage.Firmware, pattern: /^BdsDxe: / },
  // EDK2's PXE base code (NetworkPkg UefiPxeBcDxe), indented by two spaces on the console.
  // EDK2 prints ">>Start PXE over IPv4." without a line end and ends the line only when DHCP is
  // done (or has failed): the stage time is when the text appeared.
  { stage: BootStage.Pxe, pattern: /^>>Start PXE over (IPv4|IPv6)\.$/, groups: ['protocol'], partial: true },
  { stage: BootStage.PxeDhcp, pattern: /^\s*Station IP address is (\S+)/, groups: ['address'] },
  { stage: BootStage.Nbp, pattern: /^\s*NBP file downloaded successfully/ },
  { stage: BootStage.Ipxe, pattern: /^iPXE \(PCI [0-9a-f:.]+\) starting execution/ },
  { stage: BootStage.Ipxe, pattern: /^iPXE (\d[\w.+-]*) -- Open Source Network Boot Firmware/, groups: ['version'] },
  { stage: BootStage.Ipxe, pattern: /^iPXE initialising devices/ },
  { stage: BootStage.Nic, pattern: new RegExp(`^(net\\d+): (${MAC}) using .*\\(open\\)`), groups: ['device', 'mac'] },
  { stage: BootStage.Dhcp, pattern: new RegExp(`^(?:Configuring|DHCP) \\((net\\d+) (${MAC})\\)[. ]*ok\\b`), groups: ['device', 'mac'] },
  { stage: BootStage.Dhcp, pattern: new RegExp(`^(net\\d+): (${IPV4})/(\\S+)`), groups: ['device', 'address', 'netmask'] },
  { stage: BootStage.Script, pattern: /^((?:tftp|https?|ftp|nfs):\/\/\S+|[\w./-]+)\.\.\. ok\b/, groups: ['url'] },
  { stage: BootStage.Script, pattern: /^(\S+) : \d+ bytes \[script\]/, groups: ['url'] },
  { stage: BootStage.San, pattern: /^Registered SAN device (0x[0-9a-f]+)/, groups: ['device'] },
  { stage: BootStage.San, pattern: /Booting from SAN device (0x[0-9a-f]+)/, groups: ['device'] },
];

/**
 * Facts remembered from lines that are no stage, and attached to a later stage's detail: EDK2
 * names the boot file and its size (from the TFTP tsize option) before downloading it.
 */
const FACT_PATTERNS: readonly { readonly stage: BootStage; readonly fact: string; readonly pattern: RegExp }[] = [
  { stage: BootStage.Nbp, fact: 'file', pattern: /^\s*NBP filename is (\S+)/ },
  { stage: BootStage.Nbp, fact: 'size', pattern: /^\s*NBP filesize is (\d+) Bytes/ },
];

/**
 * Lines that mean the boot failed. iPXE prints its errors with a URL carrying an 8-hex-digit
 * code: "(http://ipxe.org/2d12603b)" in the 2019 build, "https://ipxe.org/err/..." in later ones.
 */
export const FAILURE_PATTERNS: readonly RegExp[] = [
  /\(?https?:\/\/ipxe\.org\/(?:err\/)?([0-9a-f]{8})\)?/,
  /^Could not boot\b/,
  /^No more network devices/,
  /Connection timed out/,
  /^No configuration methods succeeded/,
  /^Boot failed\b/,
  /^No bootable device/,
  // EDK2's PXE client: "  PXE-E16: No valid offer received.", "  PXE-E18: Server response timeout."
  /^\s*PXE-(E[0-9A-F]{2}):/,
];

/**
 * Lines that carry an iPXE error URL without meaning failure: the NIC statistics printed when
 * a link opens, e.g. `  [RXE: 5 x "Operation not supported (http://ipxe.org/3c046083)"]` (the
 * EFI e1000 driver counts frames it dropped before iPXE started).
 */
export const NOT_A_FAILURE = /^\s*\[(?:Link|RXE|TXE):/;

/** Default marker printed by the demo disk (LAB.md §3). */
export const DEFAULT_BOOT_MARKER = 'DISKLESS-OK';

/** Options for a `BootTimeline`. */
export interface BootTimelineOptions extends ConsoleLinesOptions {
  /** Text whose appearance anywhere on the console means success. Default `DISKLESS-OK`. */
  readonly marker?: string;
}

/**
 * Stage detector over one console stream. Feed chunks in arrival order with `feed`; each call
 * returns the events it produced (a stage is reported once, at its first occurrence; `failure`
 * only once too, the first failing line). `power-on` is emitted at construction time, t = 0.
 */
export class BootTimeline {
  readonly #lines: ConsoleLines;
  readonly #marker: string;
  readonly #events: BootEvent[] = [];
  readonly #facts = new Map<BootStage, Record<string, string>>();
  #outcome: BootOutcome = 'running';
  #lastAtMs = 0;

  constructor(options: BootTimelineOptions = {}) {
    this.#lines = new ConsoleLines(options);
    this.#marker = options.marker ?? DEFAULT_BOOT_MARKER;
    if (this.#marker === '') throw new RangeError('marker must not be empty');
    this.#events.push({ stage: BootStage.PowerOn, atMs: 0, line: '', detail: {} });
  }

  /** Every event so far, in order of arrival. */
  get events(): readonly BootEvent[] {
    return this.#events;
  }

  /** `marker` once the marker appeared, `failed` once a failure line appeared first. */
  get outcome(): BootOutcome {
    return this.#outcome;
  }

  /** The failure event, if the boot failed. */
  get failure(): BootEvent | undefined {
    return this.#events.find((e) => e.stage === BootStage.Failure);
  }

  /** Time the stage was reached, or undefined. */
  stageAt(stage: BootStage): number | undefined {
    return this.#events.find((e) => e.stage === stage)?.atMs;
  }

  /**
   * Feeds one console chunk that arrived `atMs` after power-on. Times must not go backwards
   * (a smaller time is raised to the last one). Returns the new events.
   */
  feed(chunk: string, atMs: number): BootEvent[] {
    const t = Math.max(atMs, this.#lastAtMs);
    this.#lastAtMs = t;
    const update = this.#lines.write(chunk);
    const out: BootEvent[] = [];
    for (const line of update.snapshots) this.#match(line, t, out);
    // The marker may be printed without a line end (a halted MBR program): look at the partial line too.
    this.#matchMarker(update.partial, t, out);
    if (update.partial !== '') this.#matchStages(update.partial, t, out, true);
    return out;
  }

  /** Ends the stream (the VM exited): evaluates the last unterminated line. */
  end(atMs: number): BootEvent[] {
    const out: BootEvent[] = [];
    const last = this.#lines.flush();
    if (last !== undefined) this.#match(last, Math.max(atMs, this.#lastAtMs), out);
    return out;
  }

  #has(stage: BootStage): boolean {
    return this.#events.some((e) => e.stage === stage);
  }

  #emit(event: BootEvent, out: BootEvent[]): void {
    this.#events.push(event);
    out.push(event);
  }

  #matchMarker(line: string, atMs: number, out: BootEvent[]): void {
    if (this.#outcome !== 'running' || !line.includes(this.#marker)) return;
    this.#outcome = 'marker';
    this.#emit({ stage: BootStage.Marker, atMs, line, detail: {} }, out);
  }

  #matchStages(line: string, atMs: number, out: BootEvent[], partial: boolean): void {
    for (const rule of STAGE_PATTERNS) {
      if ((partial && !rule.partial) || this.#has(rule.stage)) continue;
      const m = rule.pattern.exec(line);
      if (!m) continue;
      const detail: Record<string, string> = { ...this.#facts.get(rule.stage) };
      rule.groups?.forEach((name, i) => {
        const value = m[i + 1];
        if (value !== undefined) detail[name] = value;
      });
      this.#emit({ stage: rule.stage, atMs, line, detail }, out);
    }
  }

  #match(line: string, atMs: number, out: BootEvent[]): void {
    if (line === '') return;
    for (const f of FACT_PATTERNS) {
      const m = f.pattern.exec(line);
      if (m?.[1] !== undefined && !this.#has(f.stage)) this.#facts.set(f.stage, { ...this.#facts.get(f.stage), [f.fact]: m[1] });
    }
    this.#matchStages(line, atMs, out, false);
    this.#matchMarker(line, atMs, out);
    if (this.#outcome !== 'running' || NOT_A_FAILURE.test(line)) return;
    for (const pattern of FAILURE_PATTERNS) {
      const m = pattern.exec(line);
      if (!m) continue;
      this.#outcome = 'failed';
      const detail: Record<string, string> = {};
      if (m[1] !== undefined) detail.error = m[1];
      const code = /ipxe\.org\/(?:err\/)?([0-9a-f]{8})/.exec(line)?.[1];
      if (code !== undefined) detail.error = code;
      this.#emit({ stage: BootStage.Failure, atMs, line, detail }, out);
      return;
    }
  }
}
