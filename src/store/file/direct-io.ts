/**
 * Direct I/O helpers from the native addon (native/direct_io.c): the alignment O_DIRECT needs
 * for one descriptor (statx STATX_DIOALIGN) and Buffers aligned to it. Node's fs opens files
 * with O_DIRECT but has neither.
 */
import { optionalNative } from '../../net/native-addon.js';

/** What O_DIRECT asks of one file: buffer addresses and file offsets/lengths, in bytes. */
export interface DirectIoAlignment {
  readonly memory: number;
  readonly offset: number;
}

/** The native functions (native/direct_io.c). */
export interface DirectIo {
  /** The file's direct I/O alignment, or null when the kernel or file system does not report one. */
  directIoAlignment(fd: number): DirectIoAlignment | null;
  /** A zero-filled Buffer of `length` bytes starting at a multiple of `alignment` (a power of two). */
  alignedBuffer(length: number, alignment: number): Buffer;
}

/** The addon's direct I/O functions, or undefined when the addon is not built. */
export function directIo(): DirectIo | undefined {
  const alignment = optionalNative<DirectIo['directIoAlignment']>('directIoAlignment');
  const buffer = optionalNative<DirectIo['alignedBuffer']>('alignedBuffer');
  return alignment && buffer ? { directIoAlignment: alignment, alignedBuffer: buffer } : undefined;
}
