/**
 * Named SCSI constants (SPC-4, SBC-3, SAM-5), grouped per field. Only what the target
 * implements or must name in an error; extend here, never inline a number.
 */

/** Operation codes (SPC-4 §4.3, SBC-3 §5). */
export const ScsiOpcode = {
  testUnitReady: 0x00,
  requestSense: 0x03,
  reserve6: 0x16,
  release6: 0x17,
  read6: 0x08,
  write6: 0x0a,
  inquiry: 0x12,
  modeSelect6: 0x15,
  modeSense6: 0x1a,
  startStopUnit: 0x1b,
  preventAllowMediumRemoval: 0x1e,
  readCapacity10: 0x25,
  read10: 0x28,
  write10: 0x2a,
  writeAndVerify10: 0x2e,
  verify10: 0x2f,
  prefetch10: 0x34,
  synchronizeCache10: 0x35,
  writeSame10: 0x41,
  unmap: 0x42,
  modeSelect10: 0x55,
  modeSense10: 0x5a,
  reserve10: 0x56,
  release10: 0x57,
  persistentReserveIn: 0x5e,
  persistentReserveOut: 0x5f,
  compareAndWrite: 0x89,
  orWrite: 0x8b,
  writeAndVerify16: 0x8e,
  prefetch16: 0x90,
  writeAndVerify12: 0xae,
  verify12: 0xaf,
  read16: 0x88,
  write16: 0x8a,
  verify16: 0x8f,
  synchronizeCache16: 0x91,
  writeSame16: 0x93,
  serviceActionIn16: 0x9e,
  reportLuns: 0xa0,
  maintenanceIn: 0xa3,
  read12: 0xa8,
  write12: 0xaa,
} as const;

/** MAINTENANCE IN service actions (SPC-4 §6.35). */
export const MaintenanceIn = { reportSupportedOperationCodes: 0x0c } as const;

/** SERVICE ACTION IN (16) service actions (SBC-3 §5.16, §5.13). */
export const ServiceActionIn16 = { readCapacity16: 0x10, getLbaStatus: 0x12 } as const;

/** Status byte (SAM-5 §5.3). */
export const ScsiStatus = {
  good: 0x00,
  checkCondition: 0x02,
  conditionMet: 0x04,
  busy: 0x08,
  reservationConflict: 0x18,
  taskSetFull: 0x28,
  acaActive: 0x30,
  taskAborted: 0x40,
} as const;

/** Sense keys (SPC-4 §4.5.6, table 27). */
export const SenseKey = {
  noSense: 0x0,
  recoveredError: 0x1,
  notReady: 0x2,
  mediumError: 0x3,
  hardwareError: 0x4,
  illegalRequest: 0x5,
  unitAttention: 0x6,
  dataProtect: 0x7,
  abortedCommand: 0xb,
  miscompare: 0xe,
} as const;

/** An additional sense code and its qualifier. */
export interface AscPair {
  readonly asc: number;
  readonly ascq: number;
}

/** Additional sense codes (SPC-4 §4.5.6, table 28) the target reports. */
export const Asc = {
  noAdditionalSense: { asc: 0x00, ascq: 0x00 },
  unrecoveredReadError: { asc: 0x11, ascq: 0x00 },
  writeError: { asc: 0x0c, ascq: 0x00 },
  parameterListLengthError: { asc: 0x1a, ascq: 0x00 },
  invalidCommandOperationCode: { asc: 0x20, ascq: 0x00 },
  lbaOutOfRange: { asc: 0x21, ascq: 0x00 },
  invalidFieldInCdb: { asc: 0x24, ascq: 0x00 },
  logicalUnitNotSupported: { asc: 0x25, ascq: 0x00 },
  invalidFieldInParameterList: { asc: 0x26, ascq: 0x00 },
  writeProtected: { asc: 0x27, ascq: 0x00 },
  /** Thin provisioning: the pool has no space for a write (SBC-3 §4.7.3.6). */
  spaceAllocationFailedWriteProtect: { asc: 0x27, ascq: 0x07 },
  miscompareDuringVerify: { asc: 0x1d, ascq: 0x00 },
  invalidReleaseOfPersistentReservation: { asc: 0x26, ascq: 0x04 },
  insufficientRegistrationResources: { asc: 0x55, ascq: 0x04 },
  mediumRemovalPrevented: { asc: 0x53, ascq: 0x02 },
  powerOnResetOrBusDeviceReset: { asc: 0x29, ascq: 0x00 },
  savingParametersNotSupported: { asc: 0x39, ascq: 0x00 },
  internalTargetFailure: { asc: 0x44, ascq: 0x00 },
} as const satisfies Record<string, AscPair>;

/** VPD page codes (SPC-4 §7.8, SBC-3 §6.6). */
export const VpdPage = {
  supportedPages: 0x00,
  unitSerialNumber: 0x80,
  deviceIdentification: 0x83,
  blockLimits: 0xb0,
  blockDeviceCharacteristics: 0xb1,
  logicalBlockProvisioning: 0xb2,
} as const;

/** Mode page codes (SPC-4 §7.5, SBC-3 §6.5). */
export const ModePage = { readWriteErrorRecovery: 0x01, caching: 0x08, control: 0x0a, allPages: 0x3f } as const;
/** MODE SENSE page control field (SPC-4 §6.11.1). */
export const PageControl = { current: 0, changeable: 1, default: 2, saved: 3 } as const;

/** Peripheral device type (SPC-4 §6.4.2): direct-access block device. */
export const PERIPHERAL_DIRECT_ACCESS = 0x00;
/** Peripheral qualifier 011b + type 1Fh: "no logical unit here" (SPC-4 §6.4.2). */
export const PERIPHERAL_NOT_PRESENT = 0x7f;
