import type { BlockDevice } from '../../store/block-device.js';

/** CHAP credentials (RFC 7143 §12.1.3): the name the initiator sends as CHAP_N and the shared secret. */
export interface ChapCredentials {
  readonly username: string;
  readonly secret: string;
}

/** What the target knows about the initiator when it asks the resolver. */
export interface InitiatorInfo {
  /** InitiatorName key, e.g. `iqn.2010-04.org.ipxe:...`. */
  readonly name: string;
  /** Remote IP address of the connection. */
  readonly address: string;
}

/** One entry of a SendTargets answer. */
export interface TargetListing {
  readonly name: string;
  /**
   * Portals as `ip:port` (IPv6 in brackets); empty or absent means "the portal this
   * connection came in on", which is right for a single-homed server.
   */
  readonly addresses?: readonly string[];
}

/** A resolved target: LUN 0's device and how to reach it. */
export interface TargetBinding {
  /** The volume behind LUN 0. Owned by the resolver; the target never closes it. */
  readonly device: BlockDevice;
  /** Writes end in DATA PROTECT / WRITE PROTECTED and MODE SENSE reports WP. */
  readonly readOnly: boolean;
  /** When set, the initiator must pass one-way CHAP with these credentials. */
  readonly chap?: ChapCredentials;
  /**
   * When set (with `chap`), mutual CHAP: the target answers the initiator's CHAP_I/CHAP_C with
   * these credentials (RFC 7143 §12.1.3). Must differ from `chap.secret` (refused otherwise).
   */
  readonly mutualChap?: ChapCredentials;
  /**
   * Initiator names allowed to log in (exact IQN/EUI match). Absent: any initiator. A name not
   * listed fails the login with 0x0202 authorization failure.
   */
  readonly allowedInitiators?: readonly string[];
  /** The LUN number the device answers on (REPORT LUNS lists it). Default 0. */
  readonly lun?: number;
  /**
   * Stable unit serial number (VPD 80h) and source of the NAA designator; defaults to one
   * derived from the target name. Must not change for the life of the volume.
   */
  readonly serial?: string;
  /** Called once when the session that resolved this binding ends (refcounting, audit). */
  release?(): void;
}

/**
 * The narrow policy interface the iSCSI target needs from the control layer. Both methods
 * are called once per login (not per command) and may do I/O; a rejection fails the login
 * with status 0x0300 (target error), it does not crash the server.
 */
export interface TargetResolver {
  /** Targets this initiator may see in a SendTargets=All answer (discovery sessions). */
  listTargets(initiator: InitiatorInfo): Promise<readonly TargetListing[]>;
  /**
   * The target named `targetName`, or null when it does not exist or this initiator may not
   * see it (login status 0x0203 "not found" either way, so names are not disclosed).
   */
  resolve(targetName: string, initiator: InitiatorInfo): Promise<TargetBinding | null>;
}
