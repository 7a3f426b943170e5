import { DisklessError } from '../errors/index.js';

/**
 * A pure FAT12/FAT16 filesystem image writer for a handful of files and directories (the demo
 * disk's EFI system partition). Layout and field names from Microsoft's "FAT: General Overview
 * of On-Disk Format" (fatgen103, 2000): boot sector with BPB (§3.1, §3.2), FATs (§4), a fixed
 * root directory region, then the data region of clusters numbered from 2 (§3.5). The FAT type
 * is decided only by the count of data clusters (§3.5): < 4085 is FAT12, < 65525 is FAT16;
 * larger volumes (FAT32) are refused. Short (8.3) names only, no long-name entries: that is all
 * UEFI's `\EFI\BOOT\BOOTX64.EFI` needs. Deterministic: no clock, the same input gives the same
 * bytes.
 */

/** Bytes per sector of every image written here (BPB_BytsPerSec). */
export const FAT_SECTOR_SIZE = 512;

/** One file of the image: absolute path with `/` separators, e.g. `/EFI/BOOT/BOOTX64.EFI`. */
export interface FatFile {
  readonly path: string;
  readonly data: Uint8Array;
}

/** What to put in the image. */
export interface FatImageOptions {
  /** Size of the volume in bytes: a multiple of 512, at least 64 KiB, at most FAT16's limit. */
  readonly sizeBytes: number;
  readonly files: readonly FatFile[];
  /** Extra (possibly empty) directories; parents of files are created anyway. */
  readonly directories?: readonly string[];
  /** Volume label, up to 11 characters of an 8.3 name. Default `NO NAME`. */
  readonly label?: string;
  /** BS_VolID. Default 0x4449534b ("DISK"). */
  readonly volumeId?: number;
  /** BPB_HiddSec: LBA of the partition holding the volume. Default 0. */
  readonly hiddenSectors?: number;
  /** Time stamp of every entry. Default 1980-01-01 00:00:00, the FAT epoch. */
  readonly modified?: Date;
}

/** Geometry chosen for an image (reported for tests and docs). */
export interface FatGeometry {
  readonly fatType: 12 | 16;
  readonly totalSectors: number;
  readonly sectorsPerCluster: number;
  readonly reservedSectors: number;
  readonly fatCount: number;
  readonly sectorsPerFat: number;
  readonly rootEntries: number;
  readonly firstDataSector: number;
  readonly clusterCount: number;
}

/** Attribute bits of a directory entry (fatgen103 §6). */
const Attr = { ReadOnly: 0x01, Hidden: 0x02, System: 0x04, VolumeId: 0x08, Directory: 0x10, Archive: 0x20 } as const;
const DIR_ENTRY_SIZE = 32;
const ROOT_ENTRIES = 512;
const RESERVED_SECTORS = 1;
const FAT_COUNT = 2;
const MEDIA_FIXED = 0xf8;
const FAT12_MAX_CLUSTERS = 4084;
const FAT16_MAX_CLUSTERS = 65524;
const MIN_SIZE = 64 * 1024;
/** Characters allowed in a short name besides A-Z and 0-9 (fatgen103 §6.1). */
const SHORT_NAME_EXTRA = "!#$%&'()-@^_`{}~";

/**
 * Picks the geometry of a volume of `sizeBytes`: the smallest power-of-two cluster size that
 * keeps the cluster count within FAT16, then the smallest FAT that maps every cluster.
 */
export function fatGeometry(sizeBytes: number): FatGeometry {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes % FAT_SECTOR_SIZE !== 0 || sizeBytes < MIN_SIZE) {
    invalid('sizeBytes', sizeBytes, `a multiple of ${FAT_SECTOR_SIZE} of at least ${MIN_SIZE}`);
  }
  const totalSectors = sizeBytes / FAT_SECTOR_SIZE;
  const rootSectors = (ROOT_ENTRIES * DIR_ENTRY_SIZE) / FAT_SECTOR_SIZE;
  for (let spc = 1; spc <= 128; spc *= 2) {
    for (let fatSz = 1; fatSz < totalSectors; fatSz++) {
      const firstDataSector = RESERVED_SECTORS + FAT_COUNT * fatSz + rootSectors;
      if (firstDataSector >= totalSectors) break;
      const clusterCount = Math.floor((totalSectors - firstDataSector) / spc);
      const fatType = clusterCount <= FAT12_MAX_CLUSTERS ? 12 : 16;
      const fatBytes = fatType === 12 ? Math.ceil(((clusterCount + 2) * 3) / 2) : (clusterCount + 2) * 2;
      if (fatBytes > fatSz * FAT_SECTOR_SIZE) continue;
      if (clusterCount > FAT16_MAX_CLUSTERS) break;
      return { fatType, totalSectors, sectorsPerCluster: spc, reservedSectors: RESERVED_SECTORS, fatCount: FAT_COUNT, sectorsPerFat: fatSz, rootEntries: ROOT_ENTRIES, firstDataSector, clusterCount };
    }
  }
  return invalid('sizeBytes', sizeBytes, 'at most 65524 clusters of up to 64 KiB (FAT16; FAT32 is not written here)');
}

interface DirNode {
  readonly name: string;
  readonly children: Map<string, DirNode | FileNode>;
  cluster: number;
}
interface FileNode {
  readonly name: string;
  readonly data: Uint8Array;
  cluster: number;
}

/** Builds the whole volume image (`sizeBytes` long; unused space is zero). */
export function buildFatImage(options: FatImageOptions): Buffer {
  const g = fatGeometry(options.sizeBytes);
  const root: DirNode = { name: '', children: new Map(), cluster: 0 };
  for (const dir of options.directories ?? []) ensureDir(root, splitPath(dir, 'directories'));
  for (const file of options.files) {
    const parts = splitPath(file.path, 'files');
    const name = parts.pop()!;
    const parent = ensureDir(root, parts);
    if (parent.children.has(name)) invalid('files', file.path, 'each path once, not also a directory');
    parent.children.set(name, { name, data: file.data, cluster: 0 });
  }
  const image = Buffer.alloc(options.sizeBytes);
  const clusterBytes = g.sectorsPerCluster * FAT_SECTOR_SIZE;
  const fat = new Uint16Array(g.clusterCount + 2);
  fat[0] = g.fatType === 12 ? 0xf00 | MEDIA_FIXED : 0xff00 | MEDIA_FIXED;
  fat[1] = g.fatType === 12 ? 0xfff : 0xffff;
  const eoc = g.fatType === 12 ? 0xfff : 0xffff;
  let next = 2;
  const allocate = (bytes: number): number => {
    const count = Math.max(1, Math.ceil(bytes / clusterBytes));
    if (next + count > g.clusterCount + 2) invalid('files', bytes, `contents that fit in ${g.clusterCount * clusterBytes} bytes of clusters`);
    const first = next;
    for (let i = 0; i < count; i++) fat[first + i] = i === count - 1 ? eoc : first + i + 1;
    next += count;
    return first;
  };
  // Allocate clusters depth-first: directories get theirs before their children.
  const assign = (dir: DirNode): void => {
    for (const child of dir.children.values()) {
      if ('children' in child) {
        child.cluster = allocate((child.children.size + 2) * DIR_ENTRY_SIZE);
        assign(child);
      } else if (child.data.length > 0) {
        child.cluster = allocate(child.data.length);
      }
    }
  };
  if (root.children.size + (options.label ? 1 : 0) > g.rootEntries) invalid('files', root.children.size, `at most ${g.rootEntries} root entries`);
  assign(root);
  const stamp = dosTimestamp(options.modified ?? new Date(1980, 0, 1));
  const clusterOffset = (cluster: number) => (g.firstDataSector + (cluster - 2) * g.sectorsPerCluster) * FAT_SECTOR_SIZE;
  const writeDir = (dir: DirNode, offset: number, parentCluster: number): void => {
    let at = offset;
    if (dir.cluster !== 0) {
      writeEntry(image, at, '.          ', Attr.Directory, dir.cluster, 0, stamp);
      writeEntry(image, at + DIR_ENTRY_SIZE, '..         ', Attr.Directory, parentCluster, 0, stamp);
      at += 2 * DIR_ENTRY_SIZE;
    } else if (options.label !== undefined) {
      writeEntry(image, at, shortName(options.label, 'label', true), Attr.VolumeId, 0, 0, stamp);
      at += DIR_ENTRY_SIZE;
    }
    for (const child of dir.children.values()) {
      if ('children' in child) {
        writeEntry(image, at, shortName(child.name, 'path'), Attr.Directory, child.cluster, 0, stamp);
        writeDir(child, clusterOffset(child.cluster), dir.cluster);
      } else {
        writeEntry(image, at, shortName(child.name, 'path'), Attr.Archive, child.cluster, child.data.length, stamp);
        if (child.data.length > 0) image.set(child.data, clusterOffset(child.cluster));
      }
      at += DIR_ENTRY_SIZE;
    }
  };
  writeDir(root, (g.reservedSectors + g.fatCount * g.sectorsPerFat) * FAT_SECTOR_SIZE, 0);
  writeBootSector(image, g, options);
  const fatBytes = encodeFat(fat, g);
  for (let i = 0; i < g.fatCount; i++) fatBytes.copy(image, (g.reservedSectors + i * g.sectorsPerFat) * FAT_SECTOR_SIZE);
  return image;
}

/** Boot sector with the FAT12/16 BPB (fatgen103 §3.1, §3.2). */
function writeBootSector(image: Buffer, g: FatGeometry, options: FatImageOptions): void {
  // jmp short 0x3e; nop — then at 0x3e: cli; hlt; jmp $-1 (not a bootable volume).
  image.set([0xeb, 0x3c, 0x90], 0);
  image.write('DISKLESS', 3, 'latin1');
  image.writeUInt16LE(FAT_SECTOR_SIZE, 11);
  image.writeUInt8(g.sectorsPerCluster, 13);
  image.writeUInt16LE(g.reservedSectors, 14);
  image.writeUInt8(g.fatCount, 16);
  image.writeUInt16LE(g.rootEntries, 17);
  image.writeUInt16LE(g.totalSectors < 0x10000 ? g.totalSectors : 0, 19);
  image.writeUInt8(MEDIA_FIXED, 21);
  image.writeUInt16LE(g.sectorsPerFat, 22);
  image.writeUInt16LE(63, 24); // BPB_SecPerTrk: the usual LBA-translated geometry
  image.writeUInt16LE(255, 26); // BPB_NumHeads
  image.writeUInt32LE(options.hiddenSectors ?? 0, 28);
  image.writeUInt32LE(g.totalSectors < 0x10000 ? 0 : g.totalSectors, 32);
  image.writeUInt8(0x80, 36); // BS_DrvNum: a hard disk
  image.writeUInt8(0x29, 38); // BS_BootSig: the next three fields are present
  image.writeUInt32LE((options.volumeId ?? 0x4449534b) >>> 0, 39);
  image.write(shortName(options.label ?? 'NO NAME', 'label', true), 43, 'latin1');
  image.write(g.fatType === 12 ? 'FAT12   ' : 'FAT16   ', 54, 'latin1');
  image.set([0xfa, 0xf4, 0xeb, 0xfd], 0x3e);
  image[510] = 0x55;
  image[511] = 0xaa;
}

/** One FAT's bytes: 12-bit entries packed two per three bytes, or 16-bit little-endian (§4). */
function encodeFat(fat: Uint16Array, g: FatGeometry): Buffer {
  const out = Buffer.alloc(g.sectorsPerFat * FAT_SECTOR_SIZE);
  for (let n = 0; n < fat.length; n++) {
    const v = fat[n]!;
    if (g.fatType === 16) {
      out.writeUInt16LE(v, n * 2);
    } else {
      const off = Math.floor((n * 3) / 2);
      if (n % 2 === 0) {
        out[off] = v & 0xff;
        out[off + 1] = (out[off + 1]! & 0xf0) | (v >> 8);
      } else {
        out[off] = (out[off]! & 0x0f) | ((v & 0x0f) << 4);
        out[off + 1] = v >> 4;
      }
    }
  }
  return out;
}

function writeEntry(image: Buffer, at: number, name11: string, attr: number, cluster: number, size: number, stamp: { date: number; time: number }): void {
  image.write(name11, at, 'latin1');
  image[at + 11] = attr;
  image.writeUInt16LE(stamp.time, at + 14); // DIR_CrtTime
  image.writeUInt16LE(stamp.date, at + 16); // DIR_CrtDate
  image.writeUInt16LE(stamp.date, at + 18); // DIR_LstAccDate
  image.writeUInt16LE(0, at + 20); // DIR_FstClusHI: always 0 on FAT12/16
  image.writeUInt16LE(stamp.time, at + 22); // DIR_WrtTime
  image.writeUInt16LE(stamp.date, at + 24); // DIR_WrtDate
  image.writeUInt16LE(cluster, at + 26); // DIR_FstClusLO
  image.writeUInt32LE(size, at + 28);
}

/** DOS date and time (fatgen103 §6.3): 2-second resolution, years 1980–2107. */
function dosTimestamp(d: Date): { date: number; time: number } {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
  };
}

/**
 * The 11-byte directory form of an 8.3 name ("BOOTX64.EFI" → "BOOTX64 EFI"), upper-cased.
 * A volume label is 11 characters with spaces allowed and no dot.
 */
export function shortName(name: string, field: string, label = false): string {
  const upper = name.toUpperCase();
  const ok = (s: string) => [...s].every((c) => (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || SHORT_NAME_EXTRA.includes(c) || (label && c === ' '));
  if (label) {
    if (upper.length === 0 || upper.length > 11 || !ok(upper)) invalid(field, name, '1 to 11 of A-Z 0-9 space and !#$%&\'()-@^_`{}~');
    return upper.padEnd(11, ' ');
  }
  const dot = upper.lastIndexOf('.');
  const base = dot < 0 ? upper : upper.slice(0, dot);
  const ext = dot < 0 ? '' : upper.slice(dot + 1);
  if (base.length === 0 || base.length > 8 || ext.length > 3 || !ok(base) || !ok(ext) || (dot >= 0 && ext.length === 0)) {
    invalid(field, name, "an 8.3 name: 1-8 then optionally a dot and 1-3 of A-Z 0-9 !#$%&'()-@^_`{}~");
  }
  return base.padEnd(8, ' ') + ext.padEnd(3, ' ');
}

function splitPath(path: string, field: string): string[] {
  if (!path.startsWith('/')) invalid(field, path, 'an absolute path like /EFI/BOOT/BOOTX64.EFI');
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) invalid(field, path, 'a path below the root');
  // Directory entries are keyed by their 8.3 form, so "efi" and "EFI" are one directory.
  return parts.map((p) => shortName(p, field).trimEnd() && p.toUpperCase());
}

function ensureDir(root: DirNode, parts: readonly string[]): DirNode {
  let dir = root;
  for (const part of parts) {
    const existing = dir.children.get(part);
    if (existing && !('children' in existing)) invalid('directories', part, 'a name not already used by a file');
    if (existing) {
      dir = existing as DirNode;
      continue;
    }
    const made: DirNode = { name: part, children: new Map(), cluster: 0 };
    dir.children.set(part, made);
    dir = made;
  }
  return dir;
}

function invalid(field: string, value: unknown, allowed: string): never {
  throw new DisklessError('STORE_INVALID_IMAGE', `cannot build FAT image: ${field} ${JSON.stringify(value)} is not allowed; allowed: ${allowed}`, { field, value, allowed });
}
