import { configErrors } from './config-errors.js';
import { wireErrors } from './wire-errors.js';
import { tftpErrors } from './tftp-errors.js';
import { netErrors } from './net-errors.js';
import { dhcpErrors } from './dhcp-errors.js';
import { controlErrors } from './control-errors.js';
import { httpErrors } from './http-errors.js';
import { storeErrors } from './store-errors.js';
import { iscsiErrors } from './iscsi-errors.js';
import { labErrors } from './lab-errors.js';
import { aoeInitiatorErrors } from './aoe-initiator-errors.js';
import { aoeErrors } from './aoe-errors.js';
import type { ErrorSpec } from './error-spec.js';

/**
 * The one error catalogue: every stable code the project raises, composed from one table
 * per area (each area keeps its table in `<area>-errors.ts` beside this file). docs/errors.md
 * lists every code; a test checks that it does.
 */
export const catalogue = {
  ...configErrors,
  ...wireErrors,
  ...tftpErrors,
  ...netErrors,
  ...dhcpErrors,
  ...controlErrors,
  ...httpErrors,
  ...storeErrors,
  ...iscsiErrors,
  ...labErrors,
  ...aoeInitiatorErrors,
  ...aoeErrors,
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof catalogue;
