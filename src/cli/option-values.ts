import { macToString } from '../wire/ethernet/ethernet-frame.js';
import { usageError } from './volume-format.js';

/**
 * Values of command-line options shared by several commands, each checked with a USAGE error
 * naming the option, the value and what is allowed.
 */

/**
 * A unicast MAC address, "52:54:00:12:34:56", "52-54-00-12-34-56" or "525400123456", in the
 * project's canonical lower-case colon form. A multicast or broadcast address is refused: it
 * never is the source of a frame (a VM's NIC, an initiator, an allow-list entry).
 */
export function parseMac(option: string, value: string): string {
  const allowed = 'a MAC address like 52:54:00:12:34:56, unicast';
  const text = value.trim();
  if (!/^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i.test(text)) throw usageError(`option ${option}`, value, allowed);
  const mac = Buffer.from(text.replace(/[:-]/g, ''), 'hex');
  if ((mac[0]! & 1) !== 0) throw usageError(`option ${option}`, value, allowed, 'a multicast or broadcast address never sends frames');
  return macToString(mac);
}

/** An integer option in [min, max]; `undefined` is refused as a missing required option. */
export function parseInteger(option: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined) throw usageError(`option ${option}`, '', `an integer ${min}-${max}; the option is required`);
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) throw usageError(`option ${option}`, value, `an integer ${min}-${max}`);
  return Number(value);
}
