import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDisklessError } from '../errors/index.js';
import { ipxeSet, iscsiUri, renderIpxeScript, type BootScript, type SanbootScript } from './ipxe-script.js';

const target = { server: '10.77.0.1', port: 3260, lun: 0, iqn: 'iqn.2026-11.io.diskless:vol1' };
const sanboot: SanbootScript = { kind: 'sanboot', node: 'pc1', volume: 'vol1', initiatorIqn: 'iqn.2026-11.io.diskless.initiator:pc1', target };

/**
 * A model of how iPXE reads one script line (src/core/exec.c): split on whitespace, no quoting;
 * a token starting with '#' starts a comment; "||", "&&" and ";" separate commands.
 */
function commands(line: string): string[][] {
  const tokens = line.split(/\s+/).filter((t) => t !== '');
  const out: string[][] = [[]];
  for (const t of tokens) {
    if (t.startsWith('#')) break;
    if (t === '||' || t === '&&' || t === ';') out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out.filter((c) => c.length > 0);
}

function unsafeField(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    assert.ok(isDisklessError(err, 'IPXE_UNSAFE_VALUE'), `expected IPXE_UNSAFE_VALUE, got ${String(err)}`);
    return err.data.field;
  }
  return assert.fail('value accepted');
}

/** Every `goto x` has its `:x` label; labels are unique. */
function assertLabelsResolve(script: string): void {
  const lines = script.split('\n');
  const labels = lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1));
  assert.equal(new Set(labels).size, labels.length, 'duplicate labels');
  for (const line of lines) {
    for (const cmd of commands(line)) {
      if (cmd[0] === 'goto' && cmd[1] !== '${target}') assert.ok(labels.includes(cmd[1]!), `goto ${cmd[1]} has no label`);
    }
  }
}

test('sanboot script: initiator, URI with LUN 0 and default port left out, fallback on failure', () => {
  assert.equal(
    renderIpxeScript(sanboot),
    [
      '#!ipxe',
      '# diskless: node pc1 boots volume vol1 over iSCSI',
      'echo diskless: node pc1 booting volume vol1 from iscsi:10.77.0.1:::0:iqn.2026-11.io.diskless:vol1',
      'set initiator-iqn iqn.2026-11.io.diskless.initiator:pc1',
      'sanboot iscsi:10.77.0.1:::0:iqn.2026-11.io.diskless:vol1 || goto failed',
      'exit',
      ':failed',
      'echo diskless: sanboot failed for node pc1 (volume vol1); booting the next device',
      'exit 1',
      '',
    ].join('\n'),
  );
  assertLabelsResolve(renderIpxeScript(sanboot));
});

test('iSCSI URI follows iscsi:<server>:<protocol>:<port>:<lun>:<targetname>', () => {
  assert.equal(iscsiUri(target), 'iscsi:10.77.0.1:::0:iqn.2026-11.io.diskless:vol1');
  assert.equal(iscsiUri({ ...target, port: 3261, lun: 3 }), 'iscsi:10.77.0.1::3261:3:iqn.2026-11.io.diskless:vol1');
  assert.equal(iscsiUri({ ...target, iqn: 'eui.0123456789abcdef' }), 'iscsi:10.77.0.1:::0:eui.0123456789abcdef');
  // The target name may itself contain colons: iPXE splits only the first five.
  const uri = iscsiUri({ ...target, iqn: 'iqn.2026-11.io.diskless:a:b' });
  assert.deepEqual(uri.split(':').slice(0, 5), ['iscsi', '10.77.0.1', '', '', '0']);
  assert.equal(uri.split(':').slice(5).join(':'), 'iqn.2026-11.io.diskless:a:b');
});

test('iSCSI URI refuses bad servers, ports, LUNs and names', () => {
  assert.equal(unsafeField(() => iscsiUri({ ...target, server: '10.0.0.1 ; shell' })), 'target.server');
  assert.equal(unsafeField(() => iscsiUri({ ...target, server: '' })), 'target.server');
  assert.equal(unsafeField(() => iscsiUri({ ...target, server: 'fd00::1' })), 'target.server');
  assert.equal(unsafeField(() => iscsiUri({ ...target, port: 0 })), 'target.port');
  assert.equal(unsafeField(() => iscsiUri({ ...target, port: 65536 })), 'target.port');
  assert.equal(unsafeField(() => iscsiUri({ ...target, lun: -1 })), 'target.lun');
  assert.equal(unsafeField(() => iscsiUri({ ...target, lun: 1.5 })), 'target.lun');
  for (const iqn of ['', 'vol1', 'iqn.2026-11.io.diskless:${x}', 'iqn.2026-11.io.diskless:a b', 'iqn.26-11.x:y', 'eui.0123', 'iqn.2026-11.io.diskless:a\nshell']) {
    assert.equal(unsafeIqn(iqn), 'target.iqn', iqn);
  }
  function unsafeIqn(iqn: string): unknown {
    return unsafeField(() => iscsiUri({ ...target, iqn }));
  }
});

test('CHAP: safe credentials are written plainly, others with the :hex type that stores the same bytes', () => {
  const plain = renderIpxeScript({ ...sanboot, chap: { username: 'pc1', secret: 'abcdefghijkl' } });
  assert.match(plain, /^set username pc1$/m);
  assert.match(plain, /^set password abcdefghijkl$/m);
  // Settings come before sanboot, which reads them.
  assert.ok(plain.indexOf('set password') < plain.indexOf('sanboot '));

  const odd = renderIpxeScript({ ...sanboot, chap: { username: 'my user', secret: 'p@ss ${x} || #é' } });
  const line = odd.split('\n').find((l) => l.startsWith('set password'))!;
  assert.match(line, /^set password:hex [0-9a-f]{2}(:[0-9a-f]{2})*$/);
  assert.equal(Buffer.from(line.split(' ')[2]!.replace(/:/g, ''), 'hex').toString('utf8'), 'p@ss ${x} || #é');
  assert.match(odd, /^set username:hex 6d:79:20:75:73:65:72$/m);
});

test('ipxeSet: any printable value becomes exactly one set command that stores the same bytes', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }).filter((s) => !/[\x00-\x1f\x7f]/.test(s)), (value) => {
      const line = ipxeSet('password', value);
      assert.ok(!line.includes('\n'));
      const cmds = commands(line);
      assert.equal(cmds.length, 1);
      const [cmd, name, arg, ...rest] = cmds[0]!;
      assert.equal(cmd, 'set');
      assert.deepEqual(rest, []);
      assert.ok(!arg!.includes('${'));
      if (name === 'password:hex') assert.equal(Buffer.from(arg!.replace(/:/g, ''), 'hex').toString('utf8'), value);
      else {
        assert.equal(name, 'password');
        assert.equal(arg, value);
      }
    }),
    { numRuns: 2000 },
  );
});

test('ipxeSet refuses empty values, control characters and newlines, and never echoes a password', () => {
  for (const v of ['', 'a\nb', 'a\rb', 'a\0b', 'tab\there', '\x7f']) {
    try {
      ipxeSet('password', v);
      assert.fail(`accepted ${JSON.stringify(v)}`);
    } catch (err) {
      assert.ok(isDisklessError(err, 'IPXE_UNSAFE_VALUE'));
      assert.equal(err.data.value, '(hidden)');
      assert.ok(!err.message.includes(v) || v === '');
    }
  }
  assert.equal(unsafeField(() => ipxeSet('user name', 'x')), 'setting');
  assert.equal(unsafeField(() => ipxeSet('username', 'a\nchain http://evil/')), 'username');
});

test('names that could inject commands are refused in every script kind', () => {
  for (const bad of ['pc 1', 'pc1\nshell', '${net0/mac}', '-pc1', '#pc1', 'pc1||shell', '', 'x'.repeat(64)]) {
    assert.equal(unsafeField(() => renderIpxeScript({ ...sanboot, node: bad })), 'node', bad);
    assert.equal(unsafeField(() => renderIpxeScript({ ...sanboot, volume: bad })), 'volume', bad);
    assert.equal(unsafeField(() => renderIpxeScript({ kind: 'exit', mac: '52:54:00:12:34:56', node: bad })), 'node', bad);
    assert.equal(unsafeField(() => renderIpxeScript({ kind: 'script', node: bad, body: 'exit' })), 'node', bad);
  }
  assert.equal(unsafeField(() => renderIpxeScript({ ...sanboot, initiatorIqn: 'iqn.2026-11.x:${y}' })), 'initiatorIqn');
});

test('boot: script serves the operator script, adding #!ipxe when missing and normalising line ends', () => {
  assert.equal(renderIpxeScript({ kind: 'script', node: 'n', body: '#!ipxe\nkernel http://x/k\nboot\n' }), '#!ipxe\nkernel http://x/k\nboot\n');
  assert.equal(renderIpxeScript({ kind: 'script', node: 'n', body: 'kernel http://x/k\r\nboot\r\n\n' }), '#!ipxe\nkernel http://x/k\nboot\n');
  assert.equal(renderIpxeScript({ kind: 'script', node: 'n', body: '#!gpxe\nboot' }), '#!gpxe\nboot\n');
  assert.equal(unsafeField(() => renderIpxeScript({ kind: 'script', node: 'n', body: ' \n ' })), 'script');
  assert.equal(unsafeField(() => renderIpxeScript({ kind: 'script', node: 'n', body: 'boot\0' })), 'script');
});

test('boot: exit and unknown-node exit leave iPXE with a message', () => {
  assert.equal(renderIpxeScript({ kind: 'exit', mac: '52:54:00:12:34:56', node: 'pc1' }), '#!ipxe\necho diskless: node pc1 is set to boot: exit; booting the next device\nexit\n');
  assert.equal(renderIpxeScript({ kind: 'exit', mac: '52:54:00:12:34:56' }), '#!ipxe\necho diskless: 52:54:00:12:34:56 is not in the inventory; booting the next device\nexit\n');
  assert.equal(unsafeField(() => renderIpxeScript({ kind: 'exit', mac: '52-54-00-12-34-56' })), 'mac');
  assert.equal(unsafeField(() => renderIpxeScript({ kind: 'exit', mac: '52:54:00:12:34:5G' })), 'mac');
});

test('menu: local disk / retry / shell items, each with its label, default local after the timeout', () => {
  const url = 'http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe';
  const s = renderIpxeScript({ kind: 'menu', mac: '52:54:00:12:34:56', retryUrl: url, timeoutSeconds: 30 });
  assert.ok(s.startsWith('#!ipxe\n'));
  const lines = s.split('\n');
  const items = lines.filter((l) => l.startsWith('item ')).map((l) => l.split(' ')[1]);
  assert.deepEqual(items, ['local', 'retry', 'shell']);
  for (const item of items) assert.ok(lines.includes(`:${item}`), `item ${item} has no label`);
  assert.ok(lines.includes('choose --default local --timeout 30000 target || goto local'));
  assert.ok(lines.includes('goto ${target}'));
  assert.ok(lines.includes(`chain --replace --autofree ${url} || goto failed`));
  assert.match(s, /^menu diskless: 52:54:00:12:34:56 is not in the inventory$/m);
  assertLabelsResolve(s);
});

test('discovery: tells the user, sleeps, then chains the same URL, forever until adopted', () => {
  const url = 'http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe';
  const s = renderIpxeScript({ kind: 'discovery', mac: '52:54:00:12:34:56', retryUrl: url, retrySeconds: 15 });
  const lines = s.split('\n');
  assert.equal(lines[0], '#!ipxe');
  assert.ok(lines.some((l) => l.startsWith('echo ') && l.includes('52:54:00:12:34:56') && l.includes('not in the inventory')));
  const retry = lines.indexOf(':retry');
  assert.ok(retry > 0);
  assert.deepEqual(lines.slice(retry + 2, retry + 4), ['sleep 15', `chain --replace --autofree ${url} || goto retry`]);
  assertLabelsResolve(s);
});

test('menu and discovery refuse unsafe URLs and out-of-range delays', () => {
  const base: BootScript = { kind: 'discovery', mac: '52:54:00:12:34:56', retryUrl: 'http://10.77.0.1:8080/boot/x.ipxe', retrySeconds: 15 };
  for (const retryUrl of ['http://10.77.0.1/boot/${x}', 'http://10.77.0.1/a b', 'ftp://x/y', 'http://x/y\nshell', 'http://x/y||shell']) {
    assert.equal(unsafeField(() => renderIpxeScript({ ...base, retryUrl })), 'retryUrl', retryUrl);
    assert.equal(unsafeField(() => renderIpxeScript({ kind: 'menu', mac: base.mac, retryUrl, timeoutSeconds: 5 })), 'retryUrl', retryUrl);
  }
  for (const retrySeconds of [0, -1, 1.5, 86401]) assert.equal(unsafeField(() => renderIpxeScript({ ...base, retrySeconds })), 'retrySeconds');
  assert.equal(unsafeField(() => renderIpxeScript({ kind: 'menu', mac: base.mac, retryUrl: base.retryUrl, timeoutSeconds: 0 })), 'timeoutSeconds');
});

test('every rendered line of every kind is one iPXE line: no stray newline, no unexpected expansion', () => {
  const scripts: BootScript[] = [
    { ...sanboot, chap: { username: 'u', secret: 'a secret with spaces' } },
    { kind: 'exit', mac: '52:54:00:12:34:56' },
    { kind: 'menu', mac: '52:54:00:12:34:56', retryUrl: 'http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe', timeoutSeconds: 10 },
    { kind: 'discovery', mac: '52:54:00:12:34:56', retryUrl: 'http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe', retrySeconds: 10 },
  ];
  for (const s of scripts) {
    const text = renderIpxeScript(s);
    assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'));
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const expansions = line.match(/\$\{[^}]*\}/g) ?? [];
      assert.ok(expansions.every((e) => e === '${target}'), `unexpected expansion in ${line}`);
    }
  }
});

test('sanboot over AoE: aoe:e<shelf>.<slot>, no iSCSI settings, the same fallback', () => {
  const text = renderIpxeScript({ kind: 'sanboot', node: 'n1', volume: 'n1-disk', initiatorIqn: 'iqn.2026-11.io.diskless:n1', target: { server: '10.0.0.1', port: 3260, lun: 0, iqn: 'iqn.2026-11.io.diskless:n1-disk' }, aoe: { shelf: 3, slot: 4 } });
  assert.match(text, /^sanboot aoe:e3\.4 \|\| goto failed$/m);
  assert.doesNotMatch(text, /initiator-iqn|iscsi:/);
  assert.match(text, /^:failed$/m);
  assert.throws(() => renderIpxeScript({ kind: 'sanboot', node: 'n1', volume: 'v', initiatorIqn: 'iqn.2026-11.io.diskless:n1', target: { server: '10.0.0.1', port: 3260, lun: 0, iqn: 'iqn.2026-11.io.diskless:v' }, aoe: { shelf: 65535, slot: 0 } }), (e: unknown) => isDisklessError(e, 'IPXE_UNSAFE_VALUE'));
});
