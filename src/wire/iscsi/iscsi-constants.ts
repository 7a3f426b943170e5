/**
 * Named constants of the iSCSI protocol (RFC 7143), grouped per field. Every number the
 * codec and the target use comes from here, with the section that defines it.
 */

/** Basic Header Segment length (RFC 7143 §11.2.1). */
export const BHS_LENGTH = 48;
/** Header and data digests are CRC32C, 4 bytes (§11.2.3). */
export const DIGEST_LENGTH = 4;
/** DataSegmentLength is a 24-bit field (§11.2.1.5). */
export const MAX_DATA_SEGMENT_LENGTH = 0xffffff;
/** The reserved task tag (§11.2.1.8): "no task", used by unsolicited NOP-In, Reject, Async. */
export const RESERVED_TAG = 0xffffffff;

/** Opcode byte, low 6 bits (§11.2.1.2). Initiator opcodes 0x00-0x1f, target opcodes 0x20-0x3f. */
export const IscsiOpcode = {
  nopOut: 0x00,
  scsiCommand: 0x01,
  taskManagementRequest: 0x02,
  loginRequest: 0x03,
  textRequest: 0x04,
  dataOut: 0x05,
  logoutRequest: 0x06,
  snackRequest: 0x10,
  nopIn: 0x20,
  scsiResponse: 0x21,
  taskManagementResponse: 0x22,
  loginResponse: 0x23,
  textResponse: 0x24,
  dataIn: 0x25,
  logoutResponse: 0x26,
  r2t: 0x31,
  asyncMessage: 0x32,
  reject: 0x3f,
} as const;
export type IscsiOpcode = (typeof IscsiOpcode)[keyof typeof IscsiOpcode];

/** Byte 0: the immediate-delivery bit (§11.2.1.2). */
export const IMMEDIATE_BIT = 0x40;
/** Byte 1: the final bit shared by most opcodes (§11.2.1.3). */
export const FINAL_BIT = 0x80;

/** SCSI Command byte 1 (§11.3.1). */
export const ScsiCommandFlag = { read: 0x40, write: 0x20, attrMask: 0x07 } as const;
/** SCSI Response / Data-In byte 1 residual and status flags (§11.4.5, §11.7). */
export const ResidualFlag = { bidiOverflow: 0x10, bidiUnderflow: 0x08, overflow: 0x04, underflow: 0x02 } as const;
export const DataInFlag = { acknowledge: 0x40, overflow: 0x04, underflow: 0x02, status: 0x01 } as const;
/** Login byte 1 (§11.12.1-§11.12.3): transit, continue, current and next stage. */
export const LoginFlag = { transit: 0x80, continue: 0x40 } as const;
/** Text byte 1 (§11.10.1-§11.10.2): continue. */
export const TextFlag = { continue: 0x40 } as const;

/** Task attributes, SCSI Command byte 1 bits 0-2 (§11.3.1.1). */
export const TaskAttribute = { untagged: 0, simple: 1, ordered: 2, headOfQueue: 3, aca: 4 } as const;

/** Login stages, CSG and NSG (§11.12.3). 2 is reserved. */
export const LoginStage = { securityNegotiation: 0, operationalNegotiation: 1, fullFeature: 3 } as const;
export type LoginStage = (typeof LoginStage)[keyof typeof LoginStage];

/** Login Response Status-Class << 8 | Status-Detail (§11.13.5). */
export const LoginStatus = {
  success: 0x0000,
  targetMovedTemporarily: 0x0101,
  targetMovedPermanently: 0x0102,
  initiatorError: 0x0200,
  authenticationFailure: 0x0201,
  authorizationFailure: 0x0202,
  notFound: 0x0203,
  targetRemoved: 0x0204,
  unsupportedVersion: 0x0205,
  tooManyConnections: 0x0206,
  missingParameter: 0x0207,
  cannotIncludeInSession: 0x0208,
  sessionTypeNotSupported: 0x0209,
  sessionDoesNotExist: 0x020a,
  invalidDuringLogin: 0x020b,
  targetError: 0x0300,
  serviceUnavailable: 0x0301,
  outOfResources: 0x0302,
} as const;
export type LoginStatus = (typeof LoginStatus)[keyof typeof LoginStatus];

/** iSCSI protocol version (§11.12.4): 0x00 is the only one defined. */
export const ISCSI_VERSION = 0x00;

/** SCSI Response "Response" byte (§11.4.3). */
export const ScsiResponseCode = { commandCompleted: 0x00, targetFailure: 0x01 } as const;

/** Reject reason (§11.17.1). */
export const RejectReason = {
  dataDigestError: 0x02,
  snackReject: 0x03,
  protocolError: 0x04,
  commandNotSupported: 0x05,
  immediateCommandReject: 0x06,
  taskInProgress: 0x07,
  invalidDataAck: 0x08,
  invalidPduField: 0x09,
  longOperationReject: 0x0a,
  waitingForLogout: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Task Management Function Request "Function" (§11.5.1). */
export const TaskFunction = {
  abortTask: 1,
  abortTaskSet: 2,
  clearAca: 3,
  clearTaskSet: 4,
  logicalUnitReset: 5,
  targetWarmReset: 6,
  targetColdReset: 7,
  taskReassign: 8,
} as const;

/** Task Management Function Response "Response" (§11.6.1). */
export const TaskResponse = {
  functionComplete: 0,
  taskDoesNotExist: 1,
  lunDoesNotExist: 2,
  taskStillAllegiant: 3,
  reassignmentNotSupported: 4,
  functionNotSupported: 5,
  authorizationFailed: 6,
  functionRejected: 255,
} as const;

/** Logout Request reason code (§11.14.1). */
export const LogoutReason = { closeSession: 0, closeConnection: 1, removeConnectionForRecovery: 2 } as const;
/** Logout Response "Response" (§11.15.1). */
export const LogoutResponseCode = { closed: 0, cidNotFound: 1, recoveryNotSupported: 2, cleanupFailed: 3 } as const;

/** AHS types (§11.2.2.1). */
export const AhsType = { extendedCdb: 1, bidirectionalReadDataLength: 2 } as const;
