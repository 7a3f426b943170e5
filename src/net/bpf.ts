/**
 * Classic BPF (linux/filter.h) for the raw-socket filters: the opcode fields, an instruction
 * builder, and the programs the servers attach so the kernel drops what they would ignore
 * anyway. Pure; the programs are data passed to `openRawSocket({ filter })`.
 */
import type { RawSocketOptions } from './raw-socket.js';

/** One instruction as the addon takes it: [code, jt, jf, k]. */
export type BpfInstruction = readonly [number, number, number, number];
export type BpfProgram = NonNullable<RawSocketOptions['filter']>;

/** Instruction classes (code & 0x07). */
export const BpfClass = { ld: 0x00, ldx: 0x01, st: 0x02, stx: 0x03, alu: 0x04, jmp: 0x05, ret: 0x06, misc: 0x07 } as const;
/** Load sizes (code & 0x18). */
export const BpfSize = { w: 0x00, h: 0x08, b: 0x10 } as const;
/** Load modes (code & 0xe0). */
export const BpfMode = { imm: 0x00, abs: 0x20, ind: 0x40, mem: 0x60, len: 0x80, msh: 0xa0 } as const;
/** Jump and ALU operations (code & 0xf0). */
export const BpfOp = { ja: 0x00, jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, add: 0x00, and: 0x50 } as const;
/** Operand source (code & 0x08): the constant k or the X register. */
export const BpfSource = { k: 0x00, x: 0x08 } as const;

/** Accept the whole frame (any length the socket can deliver). */
export const BPF_ACCEPT_ALL = 0x40000;

/** Builds one instruction. */
export function bpf(code: number, jt: number, jf: number, k: number): BpfInstruction {
  return [code, jt, jf, k >>> 0];
}

/** `ld{b,h,w} [k]`: loads 1, 2 or 4 bytes at absolute frame offset k into A. */
export function loadAbsolute(size: keyof typeof BpfSize, offset: number): BpfInstruction {
  return bpf(BpfClass.ld | BpfSize[size] | BpfMode.abs, 0, 0, offset);
}

/** `jeq #k, jt, jf`: jumps forward jt instructions when A == k, jf otherwise. */
export function jumpIfEqual(k: number, jt: number, jf: number): BpfInstruction {
  return bpf(BpfClass.jmp | BpfOp.jeq | BpfSource.k, jt, jf, k);
}

/** `ret #k`: deliver k bytes of the frame (0 drops it). */
export function ret(k: number): BpfInstruction {
  return bpf(BpfClass.ret | BpfSource.k, 0, 0, k);
}

/**
 * A program accepting frames whose bytes at each offset equal the given values, checked in
 * order (a conjunction), and dropping the rest. Offsets are from the start of the Ethernet
 * header. Used for "IPv6 + ICMPv6 + type 133" and "IPv4 + UDP + port 67".
 */
export function matchAll(tests: ReadonlyArray<{ readonly size: keyof typeof BpfSize; readonly offset: number; readonly value: number }>): BpfProgram {
  const program: BpfInstruction[] = [];
  tests.forEach((t, i) => {
    const remaining = tests.length - i - 1;
    program.push(loadAbsolute(t.size, t.offset));
    // on mismatch skip the rest of the tests (2 instructions each) and the accept
    program.push(jumpIfEqual(t.value, 0, remaining * 2 + 1));
  });
  program.push(ret(BPF_ACCEPT_ALL), ret(0));
  return program;
}
