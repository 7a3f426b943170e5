import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QEMU_VM_DEFAULTS, QemuVm } from './qemu-vm.js';
import { isDisklessError } from '../errors/index.js';

const base = { namespace: 'du-none', tap: 'tap0', mac: '52:54:00:D1:5C:01' };

function device(vm: QemuVm): string {
  const args = vm.args();
  return args[args.indexOf('-device') + 1]!;
}

test('BIOS default: e1000 with its iPXE option ROM, SeaBIOS', () => {
  const vm = new QemuVm(base);
  assert.equal(device(vm), 'e1000,netdev=n0,mac=52:54:00:d1:5c:01');
  assert.equal(vm.args().includes('-bios'), false);
});

test('UEFI with the iPXE EFI ROM: OVMF and the same NIC', () => {
  const vm = new QemuVm({ ...base, uefi: true });
  assert.equal(device(vm), 'e1000,netdev=n0,mac=52:54:00:d1:5c:01');
  assert.equal(vm.args()[vm.args().indexOf('-bios') + 1], QEMU_VM_DEFAULTS.ovmfPath);
});

test('firmware PXE: virtio-net-pci without option ROM (romfile= empty) under OVMF', () => {
  const vm = new QemuVm({ ...base, uefi: true, nativePxe: true });
  assert.equal(device(vm), 'virtio-net-pci,netdev=n0,mac=52:54:00:d1:5c:01,romfile=');
  assert.equal(vm.args()[vm.args().indexOf('-bios') + 1], QEMU_VM_DEFAULTS.ovmfPath);
  // A NIC chosen explicitly keeps the empty ROM.
  assert.equal(device(new QemuVm({ ...base, uefi: true, nativePxe: true, nic: 'e1000e' })), 'e1000e,netdev=n0,mac=52:54:00:d1:5c:01,romfile=');
});

test('firmware PXE without UEFI is refused: SeaBIOS has no PXE client of its own', () => {
  assert.throws(() => new QemuVm({ ...base, nativePxe: true }), (e: unknown) => isDisklessError(e, 'LAB_INVALID_OPTION') && e.data.field === 'nativePxe');
});
