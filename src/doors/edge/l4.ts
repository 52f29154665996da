/**
 * L4 passthrough: dial the backend under a timeout, optionally write a PROXY v2 header, replay
 * the peeked ClientHello, then relay both ways with back-pressure (`pipe` towards the backend, a
 * pooled-buffer `Downlink` towards the client); with `allowHalfOpen` on both sockets a FIN from
 * one side is forwarded while the other direction keeps flowing.
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
  /** The client went away (a reset) before the relay began: not the backend's failure. */
  | { readonly connected: false; readonly reason: 'client-closed' }
  | { readonly connected: true; readonly bytesIn: number; readonly bytesOut: number; readonly idle: boolean };

/**
 * Read buffer of the backend socket of each open L4 connection: 16 KiB (HAProxy's default
 * `tune.bufsize`), so 10,000 quiet connections hold 160 MiB; a connection whose last read
 * filled its buffer is streaming and reads 64 KiB at a time, a quarter of the reads, writes and
 * callbacks (bench/edge.ts, L4 bulk: 520–553 instead of 793–860 ms of CPU per GiB relayed).
 */
const SMALL_READ = 16 * 1024;
const LARGE_READ = 64 * 1024;
/** Spare read buffers kept for reuse, per size. */
const SPARE_MAX = 64;
const spares = new Map<number, Buffer[]>([
  [SMALL_READ, []],
  [LARGE_READ, []],
]);
const takeBuffer = (size: number): Buffer => spares.get(size)?.pop() ?? Buffer.allocUnsafe(size);
const giveBuffer = (buffer: Buffer): void => {
  const pool = spares.get(buffer.length);
  if (pool !== undefined && pool.length < SPARE_MAX) pool.push(buffer);
};

/**
 * Backend to client without a buffer allocation per read (a bulk download otherwise allocates
 * one per read, and collecting them cost a quarter of the throughput): the backend socket reads
 * into its own buffer; when the kernel takes the chunk at once the buffer is read into again,
 * otherwise it stays with the pending write, reading pauses, and it goes back to the spares once
 * the client socket has flushed it.
 */
class Downlink {
  readonly #client: Socket;
  upstream: Socket | undefined;
  #pending = 0;
  #held: Buffer | undefined;
  /** The buffer the backend socket reads into next. */
  #reading: Buffer | undefined;
  /** The last read filled its buffer: read the next one into a large buffer. */
  #streaming = false;

  constructor(client: Socket) {
    this.#client = client;
  }

  readonly #written = (): void => {
    this.#pending--;
    if (this.#pending === 0 && this.#held !== undefined) {
      giveBuffer(this.#held);
      this.#held = undefined;
      this.upstream?.resume();
    }
  };

  /** The `onread` buffer source: called when the socket opens and after every read. */
  readonly take = (): Buffer => {
    this.#reading = takeBuffer(this.#streaming ? LARGE_READ : SMALL_READ);
    return this.#reading;
  };

  /** The backend socket closed: no read can land in its buffer any more, so reuse it. */
  readonly release = (): void => {
    if (this.#reading !== undefined) giveBuffer(this.#reading);
    this.#reading = undefined;
  };

  /** The `onread` callback; returning false pauses the backend socket. */
  readonly onRead = (bytes: number, buffer: Buffer): boolean => {
    this.#streaming = bytes === buffer.length;
    this.#pending++;
    this.#client.write(buffer.subarray(0, bytes), this.#written);
    if (this.#client.writableLength === 0) {
      giveBuffer(buffer);
      return true;
    }
    this.#held = buffer;
    return false;
  };
}

/**
 * Resolves when both sockets are closed. A client that was reset before the backend connection
 * was up gets no relay: its backend connection would otherwise stay open until idleTimeout,
 * outside every connection limit.
 */
export function relayL4(client: Socket, options: RelayOptions): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const stopTimer = options.metrics.dialSeconds.startTimer({ route: options.routeId });
    const down = new Downlink(client);
    const upstream = connect({
      host: options.host,
      port: options.port,
      allowHalfOpen: true,
      noDelay: true,
      onread: { buffer: down.take, callback: down.onRead },
    });
    down.upstream = upstream;
    upstream.once('close', down.release);
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
      // A reset destroys the client at once and emits 'close' only later.
      if (client.destroyed) {
        upstream.destroy();
        resolve({ connected: false, reason: 'client-closed' });
        return;
      }
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
  // The backend's FIN: half-close towards the client (pipe did this for the other direction).
  upstream.once('end', () => client.end());
  client.resume();
}
