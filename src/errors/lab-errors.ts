import type { ErrorTable } from './error-spec.js';

/** Errors raised by the built-in lab (src/lab): namespaces, VMs, peer daemons, console timelines. */
export const labErrors = {
  LAB_NOT_UP: { summary: 'the lab namespace does not exist: run `diskless lab up` first', retryable: false },
  LAB_INVALID_OPTION: { summary: 'a lab option (namespace, interface name, MAC, address, timeout) has a value that is not allowed', retryable: false },
  LAB_TOOL_MISSING: { summary: 'a program or file the lab needs (qemu-system-x86_64, dnsmasq, tgtd, OVMF, iPXE) is not installed', retryable: false },
  LAB_COMMAND_FAILED: { summary: 'an external command the lab runs (ip, tgtadm, sysctl) exited non-zero; data.stderr says why', retryable: false },
  LAB_PROCESS_EXITED: { summary: 'a process the lab started (QEMU, dnsmasq, tgtd, the server) exited before it was stopped', retryable: false },
  LAB_TIMEOUT: { summary: 'a lab wait ran out of time: a boot did not reach its marker, or a daemon did not become ready', retryable: true },
  LAB_BOOT_FAILED: { summary: 'the VM console showed a boot failure (an iPXE error line, no bootable device)', retryable: false },
  LAB_TRANSCRIPT_INVALID: { summary: 'a recorded console transcript (*.console.jsonl) has a line that is not [atMs, "text"]', retryable: false },
} as const satisfies ErrorTable;
