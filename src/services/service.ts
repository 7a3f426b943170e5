/**
 * What the composition root (src/main.ts) needs from every protocol server. `start` resolves
 * once the server is bound and answering; `stop` closes sockets, waits for in-flight work to
 * settle, and is safe to call twice or before `start`.
 */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
