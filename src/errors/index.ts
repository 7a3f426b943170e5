export { DisklessError, isDisklessError } from './diskless-error.js';
export { catalogue, type ErrorCode } from './catalogue.js';
export type { ErrorSpec, ErrorTable } from './error-spec.js';
