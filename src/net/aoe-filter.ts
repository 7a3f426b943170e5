import { EtherType } from '../wire/ethernet/ethernet-frame.js';
import { AoeFlag } from '../wire/aoe/aoe-header.js';
import { AOE_OFFSET } from '../wire/aoe/aoe-frame.js';
import { BPF_ACCEPT_ALL, BpfClass, BpfOp, BpfSource, bpf, jumpIfEqual, loadAbsolute, ret, type BpfProgram } from './bpf.js';

/**
 * The kernel filter of an AoE raw socket: EtherType 0x88A2 and the response flag (R, in the
 * Ver/Flags byte) set or clear, so a target sees only requests and an initiator only answers;
 * its own frames and the other side's never reach JS.
 *
 *   ldh [12]; jeq #0x88a2, 0, 3; ldb [14]; jset #R, a, b; ret #all; ret #0
 */
export function aoeFilter(want: 'requests' | 'responses'): BpfProgram {
  return [
    loadAbsolute('h', 12),
    jumpIfEqual(EtherType.aoe, 0, 3),
    loadAbsolute('b', AOE_OFFSET),
    want === 'requests' ? bpf(BpfClass.jmp | BpfOp.jset | BpfSource.k, 1, 0, AoeFlag.response) : bpf(BpfClass.jmp | BpfOp.jset | BpfSource.k, 0, 1, AoeFlag.response),
    ret(BPF_ACCEPT_ALL),
    ret(0),
  ];
}
