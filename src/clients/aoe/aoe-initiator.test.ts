/**
 * AoeInitiator against the real peer, Debian's vblade, on a veth pair: vblade in namespace
 * aoeini-<pid>-<n> on the far end over a pattern-filled file, the initiator here on the near
 * end (test/support/vblade-segment.ts). Each test builds its own segment and removes it in
 * `finally`. Frames are dropped, duplicated and counted by wrapping the raw socket the
 * initiator opens (its `openSocket` option): tc netem is not in this kernel. Needs root.
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { openRawSocket } from '../../net/open-raw-socket.js';
import type { RawSocket, RawSocketOptions } from '../../net/raw-socket.js';
import { AoeCommand, AoeError, AoeFlag } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_OFFSET } from '../../wire/aoe/aoe-frame.js';
import { decodeMacMaskList, MaskDirective, MaskError } from '../../wire/aoe/mac-mask-list.js';
import { AtaErrorBit, AtaOpcode, AtaStatus } from '../../wire/aoe/ata-command.js';
import { macToBuffer, macToString } from '../../wire/ethernet/ethernet-frame.js';
import { firstPatternMismatch, pattern } from '../../../test/support/block-pattern.js';
import { createVbladeSegment, type VbladeSegment } from '../../../test/support/vblade-segment.js';
import { AoeInitiator } from './aoe-initiator.js';
import type { AoeInitiatorOptions } from './aoe-initiator-options.js';

const SEED = 0x5eed;
const SIZE = 8 * 1024 * 1024;
const SECTORS = SIZE / 512;

/** What a tap decides for one frame. */
type Verdict = 'pass' | 'drop' | 'duplicate';

/** The tag, command and direction of an AoE frame. */
function aoeTag(frame: Buffer): number {
  return frame.readUInt32BE(AOE_OFFSET + 6);
}
function isAtaRequest(frame: Buffer): boolean {
  return frame[AOE_OFFSET + 5] === AoeCommand.ata && (frame[AOE_OFFSET]! & AoeFlag.response) === 0;
}

/**
 * Wraps the real raw socket: `send` and `receive` see every frame and may drop or (sends
 * only) duplicate it; `outstanding` counts ATA tags sent and not yet answered, as seen on the
 * wire, independently of the initiator's own bookkeeping.
 */
class Tap {
  send: (frame: Buffer) => Verdict = () => 'pass';
  receive: (frame: Buffer) => Verdict = () => 'pass';
  readonly sentTags: number[] = [];
  private readonly open = new Set<number>();
  maxOutstanding = 0;

  readonly openSocket = (options: RawSocketOptions): RawSocket => {
    const real = openRawSocket(options);
    const tap = this;
    return {
      ifname: real.ifname,
      ifindex: real.ifindex,
      mac: real.mac,
      mtu: real.mtu,
      onFrame(handler) {
        real.onFrame((frame) => {
          if (tap.receive(frame) === 'drop') return;
          tap.open.delete(aoeTag(frame));
          handler(frame);
        });
      },
      send(frame) {
        if (isAtaRequest(frame)) {
          tap.sentTags.push(aoeTag(frame));
          tap.open.add(aoeTag(frame));
          tap.maxOutstanding = Math.max(tap.maxOutstanding, tap.open.size);
        }
        const verdict = tap.send(frame);
        if (verdict === 'drop') return;
        real.send(frame);
        if (verdict === 'duplicate') real.send(frame);
      },
      close: () => real.close(),
    };
  };
}

/** Runs `body` with a segment, a started vblade and an initiator on the near end; always cleans up. */
async function withVblade(
  o: { mtu?: number; shelf?: number; slot?: number; mask?: (seg: VbladeSegment) => string[]; bufferCount?: number; initiator?: Partial<AoeInitiatorOptions>; tap?: Tap },
  body: (ctx: { seg: VbladeSegment; aoe: AoeInitiator }) => Promise<void>,
): Promise<void> {
  const seg = await createVbladeSegment({ sizeBytes: SIZE, seed: SEED, ...(o.mtu ? { mtu: o.mtu } : {}) });
  let aoe: AoeInitiator | undefined;
  try {
    await seg.startVblade({ shelf: o.shelf ?? 3, slot: o.slot ?? 1, ...(o.mask ? { mask: o.mask(seg) } : {}), ...(o.bufferCount ? { bufferCount: o.bufferCount } : {}) });
    aoe = new AoeInitiator({ ifname: seg.nearIf, shelf: o.shelf ?? 3, slot: o.slot ?? 1, ...(o.tap ? { openSocket: o.tap.openSocket } : {}), ...o.initiator });
    await body({ seg, aoe });
  } finally {
    aoe?.close();
    await seg.stop();
  }
}

/** A deterministic pseudo-random sequence (xorshift32). */
function randoms(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('AoeInitiator against vblade', { timeout: 180_000 }, () => {
  test('discover finds every target on the segment with its shelf, slot, MAC, buffer count and 2 sectors per frame at MTU 1500', async () => {
    const seg = await createVbladeSegment({ sizeBytes: SIZE, seed: SEED });
    const aoe = new AoeInitiator({ ifname: seg.nearIf });
    try {
      await seg.startVblade({ shelf: 7, slot: 2, bufferCount: 24 });
      await seg.startVblade({ shelf: 7, slot: 1 });
      const found = await aoe.discover({ waitMs: 500 });
      assert.deepEqual(
        found.map((t) => ({ address: `e${t.shelf}.${t.slot}`, mac: macToString(t.mac), bufferCount: t.bufferCount, sectorCount: t.sectorCount, aoeVersion: t.aoeVersion, config: t.config.toString() })),
        [
          { address: 'e7.1', mac: seg.farMac, bufferCount: 16, sectorCount: 2, aoeVersion: 1, config: '' },
          { address: 'e7.2', mac: seg.farMac, bufferCount: 24, sectorCount: 2, aoeVersion: 1, config: '' },
        ],
      );
      assert.ok(found.every((t) => t.firmwareVersion > 0));
      // addressed discovery: only the one asked for answers
      const one = await aoe.discover({ waitMs: 300, shelf: 7, slot: 2 });
      assert.deepEqual(one.map((t) => `e${t.shelf}.${t.slot}`), ['e7.2']);
    } finally {
      aoe.close();
      await seg.stop();
    }
  });

  test('at MTU 9000 vblade offers 17 sectors per frame and reads use them', async () => {
    const tap = new Tap();
    const lengths: number[] = [];
    tap.send = (frame) => {
      if (isAtaRequest(frame)) lengths.push(frame[AOE_OFFSET + 10 + 2]!);
      return 'pass';
    };
    await withVblade({ mtu: 9000, tap }, async ({ aoe }) => {
      const [target] = await aoe.discover({ waitMs: 300 });
      assert.equal(target?.sectorCount, 17);
      const device = await aoe.connect();
      assert.equal(device.sectorsPerCommand, 17);
      const data = await aoe.read(100, 40);
      assert.equal(firstPatternMismatch(data, 100 * 512, SEED), -1);
      // IDENTIFY (1), then 17 + 17 + 6
      assert.deepEqual(lengths, [1, 17, 17, 6]);
    });
  });

  test('identify reports the file size in sectors, LBA48 and vblade strings', async () => {
    await withVblade({ shelf: 4, slot: 9 }, async ({ aoe }) => {
      const id = await aoe.identify();
      assert.equal(id.sectors, SECTORS);
      assert.equal(id.lba48, true);
      assert.equal(id.model, 'Coraid EtherDrive vblade');
      assert.match(id.serial, /^4\.9:/);
      assert.match(id.firmware, /^V\d+/);
      const device = await aoe.connect();
      assert.equal(device.window, 16);
      assert.equal(device.sectorsPerCommand, 2);
    });
  });

  test('reads of random ranges (first and last sectors included) match the file', async () => {
    await withVblade({}, async ({ aoe }) => {
      const rnd = randoms(42);
      const ranges: Array<[number, number]> = [
        [0, 1],
        [SECTORS - 1, 1],
        [SECTORS - 37, 37],
        [0, 2048],
      ];
      for (let i = 0; i < 40; i++) {
        const count = 1 + Math.floor(rnd() * 300);
        ranges.push([Math.floor(rnd() * (SECTORS - count)), count]);
      }
      // half of them concurrently: they share the window
      await Promise.all(
        ranges.slice(0, 20).map(async ([lba, count]) => {
          const data = await aoe.read(lba, count);
          assert.equal(firstPatternMismatch(data, lba * 512, SEED), -1, `read of ${count} sectors at ${lba}`);
        }),
      );
      for (const [lba, count] of ranges.slice(20)) {
        const data = await aoe.read(lba, count);
        assert.equal(firstPatternMismatch(data, lba * 512, SEED), -1, `read of ${count} sectors at ${lba}`);
      }
      const into = Buffer.alloc(3 * 512);
      await aoe.readInto(5, into);
      assert.deepEqual(into, pattern(5 * 512, 3 * 512, SEED));
      await assert.rejects(aoe.read(SECTORS - 1, 2), (e: unknown) => isDisklessError(e, 'AOE_OUT_OF_RANGE'));
      await assert.rejects(aoe.readInto(0, Buffer.alloc(100)), (e: unknown) => isDisklessError(e, 'AOE_INVALID_REQUEST'));
    });
  });

  test('writes land in the file at the right place, and read back the same', async () => {
    await withVblade({}, async ({ seg, aoe }) => {
      const rnd = randoms(7);
      const written: Array<[number, Buffer]> = [];
      for (let i = 0; i < 12; i++) {
        const count = 1 + Math.floor(rnd() * 200);
        const lba = Math.floor(rnd() * (SECTORS - count));
        const data = pattern(lba * 512, count * 512, SEED + 1 + i);
        await aoe.write(lba, data);
        written.push([lba, data]);
      }
      await aoe.flush();
      const file = readFileSync(seg.file);
      const expected = pattern(0, SIZE, SEED);
      for (const [lba, data] of written) data.copy(expected, lba * 512);
      assert.ok(file.equals(expected), 'the file holds exactly the writes over the pattern');
      for (const [lba, data] of written.slice(-3)) assert.ok((await aoe.read(lba, data.length / 512)).equals(expected.subarray(lba * 512, lba * 512 + data.length)));
      await assert.rejects(aoe.write(0, Buffer.alloc(513)), (e: unknown) => isDisklessError(e, 'AOE_INVALID_REQUEST'));
    });
  });

  test('pipelining: more than one tag in flight, never more than the window', async () => {
    const tap = new Tap();
    await withVblade({ tap, bufferCount: 8 }, async ({ aoe }) => {
      const device = await aoe.connect();
      assert.equal(device.window, 8);
      const data = await aoe.read(0, 2048);
      assert.equal(firstPatternMismatch(data, 0, SEED), -1);
      assert.ok(tap.maxOutstanding > 1, `at most ${tap.maxOutstanding} tags were outstanding on the wire`);
      assert.ok(tap.maxOutstanding <= 8, `${tap.maxOutstanding} tags outstanding, above vblade's buffer count 8`);
      assert.equal(aoe.statistics().maxInFlight, tap.maxOutstanding);
    });
    const serial = new Tap();
    await withVblade({ tap: serial, initiator: { maxOutstanding: 1 } }, async ({ aoe }) => {
      await aoe.read(0, 256);
      assert.equal(serial.maxOutstanding, 1);
    });
  });

  test('a dropped request is sent again under the same tag and the read completes', async () => {
    const tap = new Tap();
    let ataSends = 0;
    let droppedTag: number | undefined;
    tap.send = (frame) => {
      if (!isAtaRequest(frame)) return 'pass';
      ataSends++;
      if (ataSends === 6) {
        droppedTag = aoeTag(frame);
        return 'drop';
      }
      return 'pass';
    };
    // 300 ms tries: short enough for a quick test, long enough that a loaded machine does not time out the others
    await withVblade({ tap, initiator: { timeoutMs: 300 } }, async ({ aoe }) => {
      const data = await aoe.read(64, 512);
      assert.equal(firstPatternMismatch(data, 64 * 512, SEED), -1);
      assert.notEqual(droppedTag, undefined);
      assert.equal(tap.sentTags.filter((t) => t === droppedTag).length, 2, 'the dropped tag went out twice');
      assert.ok(aoe.statistics().retransmits >= 1);
    });
  });

  test('a lost answer: the retransmission is answered, and a duplicate answer matches nothing', async () => {
    const tap = new Tap();
    let answers = 0;
    let lostTag: number | undefined;
    tap.receive = (frame) => {
      if (frame[AOE_OFFSET + 5] !== AoeCommand.ata || ++answers !== 4) return 'pass';
      lostTag = aoeTag(frame);
      return 'drop';
    };
    let ataSends = 0;
    let duplicatedTag: number | undefined;
    tap.send = (frame) => {
      if (!isAtaRequest(frame) || ++ataSends !== 10) return 'pass';
      duplicatedTag = aoeTag(frame);
      return 'duplicate';
    };
    await withVblade({ tap, initiator: { timeoutMs: 300 } }, async ({ aoe }) => {
      const data = await aoe.read(1000, 300);
      assert.equal(firstPatternMismatch(data, 1000 * 512, SEED), -1);
      assert.equal(tap.sentTags.filter((t) => t === lostTag).length, 2, 'the command whose answer was lost went out again under its tag');
      // the duplicated request is answered twice: the second answer matches nothing in flight
      await new Promise((r) => setTimeout(r, 50));
      assert.notEqual(duplicatedTag, undefined);
      assert.ok(aoe.statistics().staleAnswers >= 1);
    });
  });

  test('a MAC not on vblade\'s mask list gets no answer: discovery is empty and commands time out', async () => {
    await withVblade({ mask: () => ['02:00:00:00:00:01'], initiator: { timeoutMs: 100, tries: 3 } }, async ({ aoe }) => {
      assert.deepEqual(await aoe.discover({ waitMs: 300 }), []);
      const started = Date.now();
      await assert.rejects(aoe.read(0, 8), (e: unknown) => isDisklessError(e, 'AOE_TIMEOUT') && e.data.tries === 3);
      assert.ok(Date.now() - started >= 250, 'three tries of 100 ms');
      assert.equal(aoe.statistics().timeouts, 1);
      assert.equal(aoe.statistics().retransmits, 2);
    });
  });

  test('on the mask list it answers; the mask list reads and edits', async () => {
    // vblade 25's addmask/rmmask scan `masks + nmasks` bytes instead of nmasks entries: with two or
    // more MACs listed an add overwrites entry 1 and a delete misses (or, of entry 0, memmoves a
    // negative length). Edits are exact only while the list holds one MAC, so this test starts there.
    const other = '02:00:00:00:00:01';
    const absent = '02:00:00:00:00:09';
    const tap = new Tap();
    const maskRequests: Buffer[] = [];
    tap.send = (frame) => {
      if (frame[AOE_OFFSET + 5] === AoeCommand.macMaskList) maskRequests.push(Buffer.from(frame));
      return 'pass';
    };
    await withVblade({ tap, mask: (seg) => [seg.nearMac] }, async ({ seg, aoe }) => {
      assert.equal(firstPatternMismatch(await aoe.read(0, 4), 0, SEED), -1);
      assert.deepEqual((await aoe.readMaskList()).map(macToString), [seg.nearMac]);
      assert.deepEqual((await aoe.editMaskList({ add: [macToBuffer(other)], delete: [macToBuffer(absent)] })).map(macToString), [seg.nearMac, other]);
      // one request: the deletions first, then the additions
      const edit = decodeMacMaskList(maskRequests[1]!.subarray(AOE_ARG_OFFSET));
      assert.deepEqual(
        edit.directives.map((d) => [d.command, macToString(d.mac)]),
        [
          [MaskDirective.delete, absent],
          [MaskDirective.add, other],
        ],
      );
      // vblade keeps 32 MACs: of 31 new ones the 31st (index 30) finds the list full; the first 30 stay
      const many = Array.from({ length: 31 }, (_, i) => macToBuffer(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`));
      await assert.rejects(aoe.editMaskList({ add: many }), (e: unknown) => isDisklessError(e, 'AOE_MASK_REJECTED') && e.data.mError === MaskError.listFull && e.data.directive === 30);
      assert.equal((await aoe.readMaskList()).length, 32);
    });
  });

  test('reserve/release: reserved to another MAC, ATA commands get AoE error 6; releasing restores them', async () => {
    await withVblade({}, async ({ aoe }) => {
      assert.deepEqual(await aoe.readReserve(), []);
      const other = macToBuffer('02:00:00:00:00:05');
      assert.deepEqual((await aoe.setReserve([other])).map(macToString), ['02:00:00:00:00:05']);
      await assert.rejects(aoe.read(0, 2), (e: unknown) => isDisklessError(e, 'AOE_ERROR_RESPONSE') && e.data.aoeError === AoeError.targetReserved);
      await assert.rejects(aoe.setReserve([]), (e: unknown) => isDisklessError(e, 'AOE_ERROR_RESPONSE') && e.data.aoeError === AoeError.targetReserved);
      assert.deepEqual(await aoe.setReserve([], { force: true }), []);
      assert.equal(firstPatternMismatch(await aoe.read(0, 2), 0, SEED), -1);
    });
  });

  test('query config set: set-if-empty, error 4 on a second string, force set; discovery shows it', async () => {
    await withVblade({}, async ({ aoe }) => {
      assert.equal((await aoe.setConfig('rack 4')).config.toString(), 'rack 4');
      await assert.rejects(aoe.setConfig('rack 5'), (e: unknown) => isDisklessError(e, 'AOE_ERROR_RESPONSE') && e.data.aoeError === AoeError.configStringPresent);
      assert.equal((await aoe.setConfig('rack 5', { force: true })).config.toString(), 'rack 5');
      const [found] = await aoe.discover({ waitMs: 300 });
      assert.equal(found?.config.toString(), 'rack 5');
    });
  });

  test('ATA errors: IDNF past the end (raw), ABRT for an unknown command, and a failed read names the Error bits', async () => {
    await withVblade({}, async ({ seg, aoe }) => {
      const past = await aoe.ata({ command: AtaOpcode.readSectorsExt, flags: 0x40, sectorCount: 1, lba: SECTORS });
      assert.equal(past.status & AtaStatus.error, AtaStatus.error);
      assert.equal(past.error, AtaErrorBit.idNotFound);
      const unknown = await aoe.ata({ command: 0x99 });
      assert.equal(unknown.error, AtaErrorBit.aborted);
      // shrink the file under vblade: it still believes the old size, its pread comes up short
      const fd = openSync(seg.file, 'r+');
      ftruncateSync(fd, SIZE / 2);
      closeSync(fd);
      await assert.rejects(aoe.read(SECTORS - 4, 4), (e: unknown) => isDisklessError(e, 'AOE_ERROR_RESPONSE') && (e.data.errorBits as string[]).includes('ABRT'));
      // the initiator still works after a failed command
      assert.equal(firstPatternMismatch(await aoe.read(0, 4), 0, SEED), -1);
    });
  });

  test('no target at that address: AOE_TIMEOUT after the configured tries; close rejects waiting calls', async () => {
    await withVblade({ initiator: { slot: 8, timeoutMs: 50, tries: 2 } }, async ({ seg, aoe }) => {
      await assert.rejects(aoe.connect(), (e: unknown) => isDisklessError(e, 'AOE_TIMEOUT') && e.data.tries === 2);
      const late = new AoeInitiator({ ifname: seg.nearIf, shelf: 3, slot: 8, timeoutMs: 10_000 });
      const waiting = late.identify();
      late.close();
      await assert.rejects(waiting, (e: unknown) => isDisklessError(e, 'AOE_CLOSED'));
      await assert.rejects(late.read(0, 1), (e: unknown) => isDisklessError(e, 'AOE_CLOSED'));
    });
  });
});
