import { AoeError } from '../../wire/aoe/aoe-header.js';
import { ConfigCommand, MAX_CONFIG_STRING } from '../../wire/aoe/query-config.js';

/**
 * What a target does with a Query Config request (AoE r11 §3.2), pure: whether it answers,
 * with which error, and the config string it keeps afterwards.
 */
export type QueryConfigDecision =
  /** Stay silent (a test that does not match). */
  | { readonly answer: false }
  | { readonly answer: true; readonly error: number; readonly config: Buffer; readonly changed: boolean };

export function decideQueryConfig(current: Buffer, command: number, requested: Buffer): QueryConfigDecision {
  const keep = (error = 0): QueryConfigDecision => ({ answer: true, error, config: current, changed: false });
  switch (command) {
    case ConfigCommand.read:
      return keep();
    case ConfigCommand.testExact:
      return requested.equals(current) ? keep() : { answer: false };
    case ConfigCommand.testPrefix:
      return requested.length <= current.length && requested.equals(current.subarray(0, requested.length)) ? keep() : { answer: false };
    case ConfigCommand.setIfEmpty:
      if (current.length > 0 && !requested.equals(current)) return keep(AoeError.configStringPresent);
      return set(current, requested);
    case ConfigCommand.forceSet:
      return set(current, requested);
    default:
      return keep(AoeError.badArgument);
  }
}

function set(current: Buffer, requested: Buffer): QueryConfigDecision {
  if (requested.length > MAX_CONFIG_STRING) return { answer: true, error: AoeError.badArgument, config: current, changed: false };
  return { answer: true, error: 0, config: Buffer.from(requested), changed: !requested.equals(current) };
}
