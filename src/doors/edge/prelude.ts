/**
 * Reads what precedes the TLS session on an accepted connection: an optional PROXY header (only
 * when the listener trusts the peer) and the ClientHello, both under one deadline. The PROXY
 * header is consumed; the hello and anything after it are returned for replay.
 */
import type { Duplex } from 'node:stream';
import { type ClientHello, ClientHelloReader, type HelloFailure } from './client-hello.ts';
import { type ProxyFailure, type ProxyHeader, parseProxyHeader } from './proxy-protocol.ts';

export interface PreludeOptions {
  /** Expect a PROXY header first. */
  readonly proxyProtocol: boolean;
  /** Milliseconds for the whole prelude; slow clients are cut off. */
  readonly deadlineMs: number;
  readonly maxHelloBytes: number;
}

/**
 * Why a prelude failed: a parser reason, the deadline, the peer going away during it, or the
 * peer closing before sending a byte (`empty`: a TCP health check's connect and close).
 */
export type PreludeFailure = HelloFailure | ProxyFailure | 'timeout' | 'closed' | 'empty';

export type PreludeResult =
  | {
      readonly ok: true;
      readonly proxy: ProxyHeader | undefined;
      readonly hello: ClientHello;
      /** Bytes after the PROXY header, to replay to the TLS terminator or backend. */
      readonly replay: Buffer;
    }
  | {
      readonly ok: false;
      readonly stage: 'proxy' | 'hello';
      readonly reason: PreludeFailure;
      readonly detail: string;
    };

/**
 * Resolves once the prelude is complete or has failed; never rejects. On success the socket is
 * paused with no data listener, so the caller decides where the remaining bytes go.
 */
export function readPrelude(socket: Duplex, options: PreludeOptions): Promise<PreludeResult> {
  return new Promise((resolve) => {
    let stage: 'proxy' | 'hello' = options.proxyProtocol ? 'proxy' : 'hello';
    let pending: Buffer = Buffer.alloc(0);
    let proxy: ProxyHeader | undefined;
    const reader = new ClientHelloReader(options.maxHelloBytes);
    const helloChunks: Buffer[] = [];
    let received = 0;
    const finish = (result: PreludeResult) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      resolve(result);
    };
    const failWith = (reason: PreludeFailure, detail: string) => finish({ ok: false, stage, reason, detail });
    const feedHello = (chunk: Buffer) => {
      helloChunks.push(chunk);
      const state = reader.push(chunk);
      if (state.state === 'failed') failWith(state.reason, state.detail);
      else if (state.state === 'done')
        finish({ ok: true, proxy, hello: state.hello, replay: Buffer.concat(helloChunks) });
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (stage === 'hello') return feedHello(chunk);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const parsed = parseProxyHeader(pending);
      if (parsed.state === 'partial') return undefined;
      if (parsed.state === 'failed') return failWith(parsed.reason, parsed.detail);
      proxy = parsed.header;
      stage = 'hello';
      const rest = pending.subarray(parsed.header.length);
      pending = Buffer.alloc(0);
      if (rest.length > 0) feedHello(rest);
      return undefined;
    };
    const onEnd = () =>
      received === 0
        ? failWith('empty', 'Peer closed without sending anything')
        : failWith('closed', `Peer closed during the ${stage === 'proxy' ? 'PROXY header' : 'ClientHello'}`);
    const timer = setTimeout(() => {
      failWith(
        'timeout',
        `No complete ${stage === 'proxy' ? 'PROXY header' : 'ClientHello'} within ${options.deadlineMs} ms`,
      );
    }, options.deadlineMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  });
}
