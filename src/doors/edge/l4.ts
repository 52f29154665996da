/**
 * L4 passthrough: dial the backend under a timeout, optionally write a PROXY v2 header, replay
 * the peeked ClientHello, then relay both ways. `pipe` gives back-pressure; with `allowHalfOpen`
 * on both sockets a FIN from one side is forwarded while the other direction keeps flowing.
 */
import { connect, type Socket } from 'node:net';
import type { EdgeMetrics } from './metrics.ts';

export interface RelayOptions {
  readonly host: string;
  readonly port: number;
  readonly routeId: string;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Written before anything else (a PROXY v2 header). */
  readonly preamble?: Buffer;
  /** The bytes already read from the client. */
  readonly replay: Buffer;
  readonly metrics: EdgeMetrics;
}

export type RelayOutcome =
  | { readonly connected: false; readonly reason: 'timeout' | 'refused' }
  | { readonly connected: true; readonly bytesIn: number; readonly bytesOut: number; readonly idle: boolean };

/** Resolves when both sockets are closed. */
export function relayL4(client: Socket, options: RelayOptions): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const stopTimer = options.metrics.dialSeconds.startTimer({ route: options.routeId });
    const upstream = connect({ host: options.host, port: options.port, allowHalfOpen: true, noDelay: true });
    const dialTimer = setTimeout(() => {
      stopTimer({ outcome: 'timeout' });
      upstream.destroy();
      client.resetAndDestroy();
      resolve({ connected: false, reason: 'timeout' });
    }, options.connectTimeoutMs);
    const onDialError = () => {
      clearTimeout(dialTimer);
      stopTimer({ outcome: 'error' });
      client.resetAndDestroy();
      resolve({ connected: false, reason: 'refused' });
    };
    upstream.once('error', onDialError);
    upstream.once('connect', () => {
      clearTimeout(dialTimer);
      stopTimer({ outcome: 'ok' });
      upstream.off('error', onDialError);
      splice(client, upstream, options, resolve);
    });
  });
}

function splice(
  client: Socket,
  upstream: Socket,
  options: RelayOptions,
  resolve: (outcome: RelayOutcome) => void,
): void {
  let idle = false;
  let closed = 0;
  const baseIn = client.bytesRead - options.replay.length;
  const baseOut = client.bytesWritten;
  const onClose = () => {
    closed++;
    if (closed < 2) return;
    const bytesIn = client.bytesRead - baseIn;
    const bytesOut = client.bytesWritten - baseOut;
    options.metrics.bytes.inc({ route: options.routeId, direction: 'in' }, bytesIn);
    options.metrics.bytes.inc({ route: options.routeId, direction: 'out' }, bytesOut);
    resolve({ connected: true, bytesIn, bytesOut, idle });
  };
  const abort = () => {
    client.destroy();
    upstream.destroy();
  };
  const onIdle = () => {
    idle = true;
    abort();
  };
  client.on('close', onClose);
  upstream.on('close', onClose);
  client.on('error', abort);
  upstream.on('error', abort);
  // Socket timeouts are refreshed by reads and writes, so a one-way bulk transfer is not idle.
  client.setTimeout(options.idleTimeoutMs, onIdle);
  upstream.setTimeout(options.idleTimeoutMs, onIdle);
  if (options.preamble !== undefined) upstream.write(options.preamble);
  upstream.write(options.replay);
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}
