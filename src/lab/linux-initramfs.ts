import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { DisklessError } from '../errors/index.js';

const execFileP = promisify(execFile);

/**
 * A real diskless Linux for the lab, built from Debian packages without mounting anything:
 * Debian's kernel, and an initramfs with busybox, the kernel modules for an e1000 NIC, iSCSI,
 * SCSI disks and ext4, and open-iscsi's `iscsistart`. Its /init takes a DHCP lease, logs in to
 * an iSCSI target with `iscsistart` (parameters on the kernel command line), mounts the disk
 * (ext4) and prints `<mount>/MARKER`, then powers off. Packages that are not installed are
 * fetched with `apt-get download` and unpacked with `dpkg -x` into a cache directory that
 * outlives the run (the kernel package is ~70 MB, unpacked ~400 MB).
 */

/** Default cache for downloaded and unpacked packages. */
export const LINUX_LAB_CACHE = '/var/cache/diskless-lab';

/** Modules the initramfs loads (with their dependencies, resolved from the modules' `.modinfo`). */
export const INITRAMFS_MODULES = ['e1000', 'iscsi_tcp', 'sd_mod', 'ext4', 'crc32c_generic'] as const;

/** Kernel command-line keys /init reads. */
export const INIT_PARAMS = {
  initiator: 'diskless.initiator',
  target: 'diskless.target',
  portal: 'diskless.portal',
  port: 'diskless.port',
  user: 'diskless.user',
  secret: 'diskless.secret',
  /** When set: mount the root read-write, write this value to /WRITTEN and sync before the marker (a node writing to its own disk). */
  write: 'diskless.write',
} as const;

/** Console lines /init prints (the lab's tests and timelines match them). */
export const INIT_LINES = {
  started: 'diskless-init: userspace started',
  lease: 'diskless-init: lease',
  iscsistartStatus: 'diskless-init: iscsistart exited with status',
  disk: 'diskless-init: disk /dev/sda present',
  mounted: 'diskless-init: mounted /dev/sda',
  /** Followed by the value written to /WRITTEN (diskless.write), after sync. */
  wrote: 'diskless-init: wrote and synced /WRITTEN:',
} as const;

export interface LinuxBootFiles {
  /** bzImage. */
  readonly kernel: string;
  /** gzip'ed newc cpio. */
  readonly initrd: string;
  /** e.g. `6.1.0-56-amd64`. */
  readonly kernelRelease: string;
  /** Modules in load order. */
  readonly modules: readonly string[];
}

export interface BuildLinuxOptions {
  /** Where to write `vmlinuz` and `initrd.gz`. */
  readonly outDir: string;
  /** Package cache. Default LINUX_LAB_CACHE. */
  readonly cacheDir?: string;
  /** Progress lines (downloads). */
  readonly log?: (line: string) => void;
}

/** Builds (or reuses from the cache) the kernel and initramfs; writes `vmlinuz` and `initrd.gz` to outDir. */
export async function buildLinuxBootFiles(options: BuildLinuxOptions): Promise<LinuxBootFiles> {
  const cacheDir = options.cacheDir ?? LINUX_LAB_CACHE;
  const log = options.log ?? (() => undefined);
  const kernelPackage = await resolveKernelPackage();
  const kernelRoot = await packageRoot(kernelPackage, cacheDir, log, { forceDownload: true });
  const kernelRelease = kernelPackage.replace(/^linux-image-/, '');
  const moduleDir = join(kernelRoot, 'lib/modules', kernelRelease);
  const busyboxRoot = await packageRoot('busybox-static', cacheDir, log);
  const iscsiRoot = await packageRoot('open-iscsi', cacheDir, log);
  const usrRoot = await packageRoot('libopeniscsiusr', cacheDir, log);

  const index = await indexModules(moduleDir);
  const modules = await resolveModuleOrder(INITRAMFS_MODULES, index);

  const work = await mkdtemp(join(tmpdir(), 'diskless-initramfs-'));
  try {
    const root = join(work, 'root');
    for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'mnt', 'run', 'tmp', 'var/lock', 'etc/iscsi', 'lib/modules']) await mkdir(join(root, d), { recursive: true });
    await copyFile(await existing(join(busyboxRoot, 'bin/busybox')), join(root, 'bin/busybox'));
    await chmod(join(root, 'bin/busybox'), 0o755);
    await symlink('busybox', join(root, 'bin/sh'));
    const iscsistart = await existing(join(iscsiRoot, 'sbin/iscsistart'), join(iscsiRoot, 'usr/sbin/iscsistart'));
    await copyFile(iscsistart, join(root, 'sbin/iscsistart'));
    await chmod(join(root, 'sbin/iscsistart'), 0o755);
    const libraryPath = [iscsiRoot, usrRoot].filter((r) => r !== '/').flatMap((r) => [join(r, 'lib/x86_64-linux-gnu'), join(r, 'usr/lib/x86_64-linux-gnu')]);
    for (const lib of await sharedLibraries(iscsistart, libraryPath)) {
      // Same path inside the initramfs as ldd names (libopeniscsiusr may come from the cache).
      const target = join(root, lib.path.startsWith('/') ? lib.path : `/lib/x86_64-linux-gnu/${basename(lib.path)}`);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(lib.file, target);
    }
    for (const name of modules) await copyFile(index.get(name)!, join(root, 'lib/modules', `${name}.ko`));
    await writeFile(join(root, 'etc/modules-load'), `${modules.join('\n')}\n`);
    await writeFile(join(root, 'etc/udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
    await writeFile(join(root, 'init'), INIT_SCRIPT, { mode: 0o755 });

    await mkdir(options.outDir, { recursive: true });
    const kernel = join(options.outDir, 'vmlinuz');
    await copyFile(await existing(join(kernelRoot, 'boot', `vmlinuz-${kernelRelease}`)), kernel);
    const initrd = join(options.outDir, 'initrd.gz');
    await writeCpioGz(root, initrd);
    return { kernel, initrd, kernelRelease, modules };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The versioned kernel package `linux-image-amd64` depends on (e.g. linux-image-6.1.0-56-amd64). */
export async function resolveKernelPackage(): Promise<string> {
  const out = await run('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-\d\S*-amd64)/.exec(out);
  if (!m) throw new DisklessError('LAB_TOOL_MISSING', `apt-cache knows no versioned kernel package behind linux-image-amd64 (run apt-get update): ${out.trim()}`, { package: 'linux-image-amd64' });
  return m[1]!;
}

/**
 * The root under which `pkg`'s files are: `/` when it is installed (unless forceDownload), else
 * `<cacheDir>/root/<pkg>` after `apt-get download` + `dpkg -x` (done once; a `.complete` file
 * marks a finished unpack).
 */
export async function packageRoot(pkg: string, cacheDir: string, log: (line: string) => void, options: { forceDownload?: boolean } = {}): Promise<string> {
  if (!options.forceDownload && (await installed(pkg))) return '/';
  const root = join(cacheDir, 'root', pkg);
  if (await exists(join(root, '.complete'))) return root;
  const debs = join(cacheDir, 'debs');
  await mkdir(debs, { recursive: true });
  let deb = (await readdir(debs)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (deb === undefined) {
    log(`apt-get download ${pkg} (into ${debs})`);
    await run('apt-get', ['download', '-q', pkg], { cwd: debs });
    deb = (await readdir(debs)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (deb === undefined) throw new DisklessError('LAB_COMMAND_FAILED', `apt-get download ${pkg} left no ${pkg}_*.deb in ${debs}`, { command: 'apt-get', package: pkg });
  }
  const partial = `${root}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  log(`dpkg -x ${deb}`);
  await run('dpkg', ['-x', join(debs, deb), partial]);
  await rm(root, { recursive: true, force: true });
  await rename(partial, root);
  await writeFile(join(root, '.complete'), `${deb}\n`);
  return root;
}

async function installed(pkg: string): Promise<boolean> {
  try {
    const { stdout } = await execFileP('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return stdout.includes('install ok installed');
  } catch {
    return false;
  }
}

/** Module name (dashes as underscores) → .ko path, for every module under `moduleDir/kernel`. */
export async function indexModules(moduleDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ko')) index.set(moduleName(entry.name.slice(0, -3)), path);
    }
  };
  try {
    await walk(join(moduleDir, 'kernel'));
  } catch (err) {
    throw new DisklessError('LAB_TOOL_MISSING', `no kernel modules under ${moduleDir}/kernel: ${(err as Error).message}`, { path: moduleDir });
  }
  if (index.size === 0) throw new DisklessError('LAB_TOOL_MISSING', `no uncompressed *.ko modules under ${moduleDir}/kernel`, { path: moduleDir });
  return index;
}

function moduleName(name: string): string {
  return name.replace(/-/g, '_');
}

/**
 * A module's `.modinfo` field (what `modinfo -F <field>` prints), read from the ELF file's
 * NUL-separated `key=value` strings. Every value of the field, in file order.
 */
export function modinfoField(ko: Buffer, field: string): string[] {
  const values: string[] = [];
  const key = Buffer.from(`\0${field}=`);
  let at = ko.indexOf(key);
  while (at >= 0) {
    const start = at + key.length;
    const end = ko.indexOf(0, start);
    values.push(ko.toString('utf8', start, end < 0 ? ko.length : end));
    at = ko.indexOf(key, start);
  }
  return values;
}

/** `roots` and everything they depend on (`.modinfo` depends=), dependencies before dependants. */
export async function resolveModuleOrder(roots: readonly string[], index: ReadonlyMap<string, string>): Promise<string[]> {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = async (raw: string, from: string): Promise<void> => {
    const name = moduleName(raw);
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new DisklessError('LAB_COMMAND_FAILED', `kernel modules depend on each other in a cycle at ${name}`, { module: name });
    const path = index.get(name);
    if (path === undefined) throw new DisklessError('LAB_TOOL_MISSING', `kernel module ${name} (needed by ${from}) is not in the kernel package`, { module: name });
    state.set(name, 'visiting');
    const ko = await readFile(path);
    const depends = modinfoField(ko, 'depends').flatMap((d) => d.split(',')).filter((d) => d.length > 0);
    for (const dep of depends) await visit(dep, name);
    state.set(name, 'done');
    order.push(name);
  };
  for (const root of roots) await visit(root, 'the initramfs');
  return order;
}

/** What ldd resolves for `binary`: the name as linked, and the file to copy. */
export async function sharedLibraries(binary: string, libraryPath: readonly string[]): Promise<{ path: string; file: string }[]> {
  const env = { ...process.env, ...(libraryPath.length > 0 ? { LD_LIBRARY_PATH: libraryPath.join(':') } : {}) };
  const out = await run('ldd', [binary], { env });
  const libs: { path: string; file: string }[] = [];
  for (const line of out.split('\n')) {
    const arrow = /^\s*(\S+)\s+=>\s+(\S+)\s+\(/.exec(line);
    if (arrow) {
      if (arrow[2] === 'not') throw new DisklessError('LAB_TOOL_MISSING', `ldd: ${binary} needs ${arrow[1]}, which is not found`, { library: arrow[1] });
      const file = arrow[2]!;
      // Files from a cache root keep their standard location inside the initramfs.
      const path = libraryPath.some((p) => file.startsWith(`${p}/`)) ? `/lib/x86_64-linux-gnu/${basename(file)}` : file;
      libs.push({ path, file });
      continue;
    }
    const loader = /^\s*(\/\S+)\s+\(/.exec(line);
    if (loader) libs.push({ path: loader[1]!, file: loader[1]! });
  }
  if (!libs.some((l) => basename(l.path).startsWith('ld-linux'))) throw new DisklessError('LAB_COMMAND_FAILED', `ldd ${binary} named no dynamic loader: ${out.trim()}`, { command: 'ldd' });
  return libs;
}

/** `find . | cpio -o -H newc | gzip` of `root` into `out`. */
async function writeCpioGz(root: string, out: string): Promise<void> {
  const { stdout: list } = await execFileP('find', ['.'], { cwd: root, encoding: 'utf8', maxBuffer: 16 << 20 });
  const cpio = spawn('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  cpio.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    cpio.on('error', reject);
    cpio.on('close', resolve);
  });
  cpio.stdin.end(list);
  await pipeline(cpio.stdout, createGzip({ level: 6 }), createWriteStream(out));
  const code = await exited.catch((err: NodeJS.ErrnoException) => {
    throw new DisklessError('LAB_TOOL_MISSING', `cpio cannot run (install Debian package cpio): ${err.message}`, { tool: 'cpio' });
  });
  if (code !== 0) throw new DisklessError('LAB_COMMAND_FAILED', `cpio exited with status ${code}: ${stderr.trim()}`, { command: 'cpio', stderr });
}

/**
 * An ext4 image of `size` bytes holding the files in `files` (name → content) at its root,
 * made with `mkfs.ext4 -d` (e2fsprogs): no mounting.
 */
export async function writeExt4Image(path: string, size: number, files: Readonly<Record<string, string>>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'diskless-rootdir-'));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    const handle = await open(path, 'w');
    await handle.truncate(size);
    await handle.close();
    await run('mkfs.ext4', ['-q', '-F', '-d', dir, path]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function existing(...candidates: string[]): Promise<string> {
  for (const c of candidates) if (await exists(c)) return c;
  throw new DisklessError('LAB_TOOL_MISSING', `missing: ${candidates.join(' or ')}`, { path: candidates[0] });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(command, args, { encoding: 'utf8', maxBuffer: 16 << 20, ...options });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new DisklessError('LAB_TOOL_MISSING', `${command} is not installed`, { tool: command });
    throw new DisklessError('LAB_COMMAND_FAILED', `${command} ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, { command, stderr: e.stderr });
  }
}

/** udhcpc's hook: apply the lease (address, router) and print it. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface"
    echo "${INIT_LINES.lease} $ip/\${mask:-24} on $interface" ;;
esac
exit 0
`;

/** /init: modules, DHCP, iscsistart, mount (read-write and write /WRITTEN with diskless.write), marker, power off. Parameters from /proc/cmdline. */
const INIT_SCRIPT = `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "${INIT_LINES.started}"
param() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "\${w#*=}";; esac; done; }
finish() { echo "diskless-init: $1"; sync; poweroff -f; sleep 5; halt -f; }
for m in $(cat /etc/modules-load); do insmod /lib/modules/$m.ko || echo "diskless-init: insmod $m failed"; done
INITIATOR=$(param ${INIT_PARAMS.initiator}); TARGET=$(param ${INIT_PARAMS.target}); PORTAL=$(param ${INIT_PARAMS.portal})
PORT=$(param ${INIT_PARAMS.port}); ISCSI_USER=$(param ${INIT_PARAMS.user}); ISCSI_SECRET=$(param ${INIT_PARAMS.secret})
[ -n "$INITIATOR" ] && [ -n "$TARGET" ] && [ -n "$PORTAL" ] || finish "missing ${INIT_PARAMS.initiator}, ${INIT_PARAMS.target} or ${INIT_PARAMS.portal} on the kernel command line"
ip link set lo up
udhcpc -i eth0 -s /etc/udhcpc.script -q -f -n -t 20 -T 1 || finish "no DHCP lease on eth0"
set -- -i "$INITIATOR" -t "$TARGET" -g 1 -a "$PORTAL" -p "\${PORT:-3260}"
[ -n "$ISCSI_USER" ] && set -- "$@" -u "$ISCSI_USER" -w "$ISCSI_SECRET"
echo "diskless-init: iscsistart -i $INITIATOR -t $TARGET -g 1 -a $PORTAL -p \${PORT:-3260}\${ISCSI_USER:+ -u $ISCSI_USER -w ***}"
iscsistart "$@"
rc=$?
echo "${INIT_LINES.iscsistartStatus} $rc"
[ "$rc" = 0 ] || finish "iSCSI login failed"
n=0; while [ ! -b /dev/sda ] && [ $n -lt 100 ]; do sleep 0.2; n=$((n+1)); done
[ -b /dev/sda ] || finish "no /dev/sda after the iSCSI login"
echo "${INIT_LINES.disk}"
WRITE=$(param ${INIT_PARAMS.write})
if [ -n "$WRITE" ]; then
  mount -t ext4 /dev/sda /mnt || finish "mounting /dev/sda read-write failed"
  echo "${INIT_LINES.mounted} read-write"
  echo "$WRITE" > /mnt/WRITTEN && sync || finish "writing /WRITTEN failed"
  echo "${INIT_LINES.wrote} $WRITE"
else
  mount -t ext4 -o ro /dev/sda /mnt || finish "mounting /dev/sda failed"
  echo "${INIT_LINES.mounted}"
fi
cat /mnt/MARKER
umount /mnt
finish "done"
`;
