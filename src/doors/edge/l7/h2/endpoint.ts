/**
 * One HTTP/2 connection of the frame relay, either role: the frame-level protocol (RFC 9113 §6)
 * that does not depend on what streams carry. SETTINGS and their ACK, PING, GOAWAY, connection
 * flow control, header blocks assembled from HEADERS + CONTINUATION and HPACK-decoded, frame
 * validity; writes batched into one socket write per event-loop turn. What streams mean is the
 * subclass's business (relay.ts). Over 400 lines: it is the whole of RFC 9113 §6 for both roles.
 */
import { Budget } from '../budget.ts';
import type { Duplex } from 'node:stream';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ERROR,
  FLAG,
  FRAME,
  FRAME_HEADER,
  FrameReader,
  frame,
  frameHeader,
  goawayFrame,
  MAX_WINDOW,
  PREFACE,
  rstStreamFrame,
  SETTING,
  StreamError,
  settingsFrame,
  unpad,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames.ts';
import { type FieldList, HpackDecoder, HpackEncoder, HpackError } from './hpack.ts';

/** What this side announces. */
export interface LocalSettings {
  readonly maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: the receive window of every stream. */
  readonly streamWindow: number;
  /** The connection receive window. */
  readonly connectionWindow: number;
  /**
   * true: the connection window is given back as DATA arrives (a connection shared by many
   * clients must not let one stalled stream hold up the others; stream windows bound what is
   * buffered). false: only as the data is passed on or dropped, so the connection window bounds
   * what one peer can make the relay buffer.
   */
  readonly eagerConnectionWindow: boolean;
  readonly maxHeaderListSize: number;
}

/**
 * Compressed header block ceiling (HEADERS + CONTINUATION), frame headers included: CONTINUATION
 * floods end here. Empty CONTINUATION frames cost 9 bytes each, so they count too.
 */
const MAX_HEADER_BLOCK = 128 * 1024;

/**
 * CONTINUATION frames one header block may have (CVE-2024-27316): the largest block we take,
 * 128 KiB, needs 8 at the 16 KiB frame size we announce; 32 leaves room for peers that split
 * smaller.
 */
const MAX_CONTINUATIONS = 32;

/**
 * After we end a connection (GOAWAY, then FIN), how long the peer has to read the rest and close
 * its side before the socket is destroyed: a peer that never does would otherwise keep the
 * socket in FIN-WAIT-2 with its descriptor, buffers and the listener's connection slot.
 */
const CLOSE_GRACE_MS = 1000;

/**
 * Frames that cost work and move no request forward (SETTINGS, PING, PRIORITY, unknown types,
 * empty DATA, HEADERS for streams already gone) a peer may send: a burst, then a rate per second.
 * Past it the connection ends with ENHANCE_YOUR_CALM (the floods of CVE-2019-9512, -9515, -9518;
 * SETTINGS also walk every open stream when they change the initial window). Browsers and gRPC
 * clients send a handful per connection.
 */
const NOISE_BURST = 1000;
/** A WINDOW_UPDATE below this many octets counts as noise too. */
const SMALL_WINDOW_UPDATE = 1024;
const NOISE_PER_SECOND = 200;

/**
 * Bytes in the socket's write buffer above which no more DATA is put in it: the rest waits in
 * its stream's queue until 'drain', and the sender's window is given back only for what went
 * into the socket, so a peer that stops reading TCP stops its senders within their windows.
 */
const WRITE_HIGH_WATER = 256 * 1024;

/** Bytes written and not yet taken by the peer before we stop reading from it. */
const MAX_UNREAD = 1024 * 1024;

/** One side of a relayed stream, on one connection: its send window and what waits for it. */
export interface StreamHalf {
  /** 0 until a backend stream is opened. */
  id: number;
  /** Flow-control credit the peer gave us on this stream (may go negative, §6.9.2). */
  sendWindow: number;
  /** Credit the peer still has for sending to us on this stream. */
  recvWindow: number;
  /** Received bytes passed on (or dropped) and not yet given back by WINDOW_UPDATE. */
  unacked: number;
  /** We sent END_STREAM or RST_STREAM. */
  localClosed: boolean;
  /** The peer sent END_STREAM or RST_STREAM. */
  remoteClosed: boolean;
  /** DATA waiting for send window, in order. */
  readonly queue: Buffer[];
  /** Received bytes not yet given back at connection level (non-eager connections). */
  held: number;
  /** After the queue: END_STREAM on its own (`true`) or a trailers field list. */
  pendingEnd: boolean | FieldList;
  /** Where small DATA pieces are copied (see `enqueue`). */
  backing?: { readonly buf: Buffer; used: number } | undefined;
}

export function createHalf(id: number, sendWindow: number, recvWindow: number): StreamHalf {
  return {
    id,
    sendWindow,
    recvWindow,
    unacked: 0,
    held: 0,
    localClosed: false,
    remoteClosed: false,
    queue: [],
    pendingEnd: false,
  };
}

/** Largest buffer small DATA pieces are copied into, per stream half. */
const SMALL_BACKING = 16 * 1024;
/** Room of a half's first such buffer; each next one is twice as large, up to SMALL_BACKING. */
const FIRST_BACKING = 256;

/**
 * Queues received DATA on `half`. DATA is passed on as a view of the socket's read chunk, without
 * copying; a piece much smaller than its chunk is copied instead (into a buffer of the half's own,
 * shared by consecutive small pieces), since while it waits for send window it would keep the
 * whole chunk alive: tiny DATA frames between ignored frames would pin megabytes for a few bytes.
 */
export function enqueue(half: StreamHalf, data: Buffer): void {
  const queue = half.queue;
  if (data.length * 4 >= data.buffer.byteLength) {
    queue.push(data);
    return;
  }
  let backing = half.backing;
  if (backing === undefined || backing.used + data.length > backing.buf.length) {
    // Start small and double: a stream that gets one short DATA (most responses) costs a few
    // hundred bytes, not 16 KiB; a flood of tiny frames reaches 16 KiB buffers after a few.
    const room = Math.min(SMALL_BACKING, backing === undefined ? FIRST_BACKING : backing.buf.length * 2);
    backing = { buf: Buffer.allocUnsafeSlow(Math.max(room, data.length)), used: 0 };
    half.backing = backing;
  }
  const start = backing.used;
  data.copy(backing.buf, start);
  backing.used += data.length;
  const last = queue.at(-1);
  // The last queued piece ends where this one starts in the same buffer: one piece, not two.
  if (
    last !== undefined &&
    last.buffer === backing.buf.buffer &&
    last.byteOffset + last.length === backing.buf.byteOffset + start
  ) {
    queue[queue.length - 1] = backing.buf.subarray(start - last.length, backing.used);
  } else {
    queue.push(backing.buf.subarray(start, backing.used));
  }
}

const dirty = new Set<H2Endpoint>();
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  for (const endpoint of dirty) endpoint.flush();
  dirty.clear();
}

export abstract class H2Endpoint {
  readonly socket: Duplex;
  readonly local: LocalSettings;
  readonly #reader: FrameReader;
  readonly decoder: HpackDecoder;
  readonly encoder = new HpackEncoder();
  #out: Buffer[] = [];
  #outBytes = 0;
  /** Connection-level send credit (§6.9.1). */
  sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;
  #consumed = 0;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = DEFAULT_MAX_FRAME;
  peerMaxStreams = Number.POSITIVE_INFINITY;
  #sawSettings = false;
  /** A header block being assembled from HEADERS + CONTINUATION. */
  #block:
    | {
        streamId: number;
        flags: number;
        parts: Buffer[];
        size: number;
        continuations: number;
        selfDependent: boolean;
      }
    | undefined;
  /** Halves whose queue waits for connection-level send credit. */
  readonly blocked = new Set<StreamHalf>();
  /** Halves whose queue waits for the socket to drain. */
  readonly #draining = new Set<StreamHalf>();
  closed = false;
  /** GOAWAY sent. */
  goingAway = false;
  readonly #noise = new Budget(NOISE_BURST, NOISE_PER_SECOND);

  /** `server` expects the client connection preface; `client` sends it (RFC 9113 §3.4). */
  constructor(socket: Duplex, local: LocalSettings, role: 'server' | 'client') {
    this.socket = socket;
    const expectPreface = role === 'server';
    if (role === 'client') this.write(PREFACE);
    this.local = local;
    this.decoder = new HpackDecoder(4096);
    let preface = expectPreface ? 24 : 0;
    const prefaceText = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    this.#reader = new FrameReader(DEFAULT_MAX_FRAME, (type, flags, id, payload) =>
      this.#onFrame(type, flags, id, payload),
    );
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        if (preface > 0) {
          const take = Math.min(preface, chunk.length);
          const expected = prefaceText.slice(24 - preface, 24 - preface + take);
          if (chunk.toString('latin1', 0, take) !== expected) {
            throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'Bad connection preface');
          }
          preface -= take;
          chunk = chunk.subarray(take);
          if (chunk.length === 0) return;
        }
        this.#reader.push(chunk);
      } catch (error) {
        this.#fail(error);
      }
    });
    socket.on('error', (error: Error) => this.terminate(error.message));
    socket.on('close', () => this.terminate('closed'));
    // Our SETTINGS, then the connection window raised above its default of 64 KiB.
    this.write(
      settingsFrame([
        [SETTING.ENABLE_PUSH, 0],
        [SETTING.MAX_CONCURRENT_STREAMS, local.maxConcurrentStreams],
        [SETTING.INITIAL_WINDOW_SIZE, local.streamWindow],
        [SETTING.MAX_HEADER_LIST_SIZE, local.maxHeaderListSize],
      ]),
    );
    if (local.connectionWindow > DEFAULT_WINDOW) {
      this.write(windowUpdateFrame(0, local.connectionWindow - DEFAULT_WINDOW));
      this.#recvWindow = local.connectionWindow;
    }
  }

  // --- what the subclass implements -------------------------------------------------------

  /** A complete, decoded header block on a stream. */
  protected abstract onHeaders(
    streamId: number,
    fields: FieldList,
    tooLarge: boolean,
    endStream: boolean,
    /** What the block cost on the wire (frame headers included). */
    wireBytes: number,
  ): void;
  /** DATA (padding removed); `flowLength` is what it cost in flow control. */
  protected abstract onData(streamId: number, data: Buffer, endStream: boolean, flowLength: number): void;
  protected abstract onReset(streamId: number, code: number): void;
  /** The send window of a stream grew (`increment` already validated against overflow by caller). */
  protected abstract onStreamWindow(streamId: number, increment: number): void;
  protected abstract onGoaway(lastStreamId: number, code: number): void;
  /** Every stream's send window moves by `delta` (SETTINGS_INITIAL_WINDOW_SIZE changed). */
  protected abstract onInitialWindow(delta: number): void;
  /** RST_STREAM on a stream never opened is a PROTOCOL_ERROR (§6.4); throws ConnectionError. */
  protected abstract checkKnown(streamId: number): void;
  /** The connection is gone (error, close, or after GOAWAY); called once. */
  protected abstract onTerminate(reason: string): void;
  /** The stream id the GOAWAY we send names as the last one processed. */
  protected abstract lastPeerStream(): number;

  // --- writing -------------------------------------------------------------------------------

  write(buf: Buffer): void {
    if (this.closed) return;
    this.#out.push(buf);
    this.#outBytes += buf.length;
    dirty.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  /** Sends what was queued this turn: small batches as one write (one TLS record for many frames). */
  flush(): void {
    const out = this.#out;
    if (out.length === 0 || this.socket.destroyed) return;
    this.#out = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    if (out.length === 1) this.socket.write(out[0] ?? Buffer.alloc(0));
    else if (bytes <= 64 * 1024) this.socket.write(Buffer.concat(out, bytes));
    else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
    // A peer that does not read what we send (PING or SETTINGS floods) is not read either.
    if (this.socket.writableLength > MAX_UNREAD && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once('drain', () => this.socket.resume());
    }
  }

  /** A header block, split into HEADERS + CONTINUATION at the peer's frame size. */
  writeHeaders(streamId: number, fields: FieldList, endStream: boolean): void {
    const encoded = this.encoder.encode(fields, FRAME_HEADER);
    const length = encoded.length - FRAME_HEADER;
    const max = this.peerMaxFrame;
    const end = endStream ? FLAG.END_STREAM : 0;
    if (length <= max) {
      // The usual case: one HEADERS frame, its header written in front of the block.
      writeFrameHeader(encoded, length, FRAME.HEADERS, end | FLAG.END_HEADERS, streamId);
      this.write(encoded);
      return;
    }
    const block = encoded.subarray(FRAME_HEADER);
    for (let at = 0; at < block.length; at += max) {
      const last = at + max >= block.length;
      const type = at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      const flags = (at === 0 ? end : 0) | (last ? FLAG.END_HEADERS : 0);
      this.write(frame(type, flags, streamId, block.subarray(at, Math.min(block.length, at + max))));
    }
  }

  writeData(streamId: number, data: Buffer, endStream: boolean): void {
    this.write(frameHeader(data.length, FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId));
    if (data.length > 0) this.write(data);
  }

  writeRst(streamId: number, code: number): void {
    this.write(rstStreamFrame(streamId, code));
  }

  /**
   * Sends the queued DATA of `half` as far as both windows allow, then its end (END_STREAM or
   * trailers) once the queue is empty; returns the bytes sent so the caller credits their source.
   */
  flushHalf(half: StreamHalf): number {
    let sent = 0;
    const queue = half.queue;
    while (queue.length > 0) {
      if (this.#full()) {
        this.#waitDrain(half);
        return sent;
      }
      const room = Math.min(half.sendWindow, this.sendWindow);
      if (room <= 0) {
        if (this.sendWindow <= 0) this.blocked.add(half);
        return sent;
      }
      const chunk = queue[0] ?? Buffer.alloc(0);
      const n = Math.min(chunk.length, room, this.peerMaxFrame);
      const piece = n === chunk.length ? chunk : chunk.subarray(0, n);
      if (n === chunk.length) queue.shift();
      else queue[0] = chunk.subarray(n);
      half.sendWindow -= n;
      this.sendWindow -= n;
      sent += n;
      const endNow = queue.length === 0 && half.pendingEnd === true;
      this.writeData(half.id, piece, endNow);
      if (endNow) {
        half.pendingEnd = false;
        half.localClosed = true;
      }
    }
    if (half.pendingEnd !== false && !half.localClosed) {
      if (half.pendingEnd === true) this.writeData(half.id, Buffer.alloc(0), true);
      else this.writeHeaders(half.id, half.pendingEnd, true);
      half.pendingEnd = false;
      half.localClosed = true;
    }
    return sent;
  }

  /** The socket holds more unsent bytes than WRITE_HIGH_WATER (and so will emit 'drain'). */
  #full(): boolean {
    const socket = this.socket;
    return socket.writableLength > Math.max(WRITE_HIGH_WATER, socket.writableHighWaterMark);
  }

  #waitDrain(half: StreamHalf): void {
    if (this.#draining.size === 0) {
      this.socket.once('drain', () => {
        const waiting = [...this.#draining];
        this.#draining.clear();
        if (this.closed) return;
        for (const h of waiting) this.resume(h);
      });
    }
    this.#draining.add(half);
  }

  /**
   * Gives `bytes` of a stream's receive window back once half of it is used (fewer frames), and
   * on a non-eager connection as much of the connection window.
   */
  credit(half: StreamHalf, bytes: number): void {
    if (bytes <= 0) return;
    if (!this.local.eagerConnectionWindow) {
      // Never more than the stream took: a window given back twice would let the peer overrun.
      const back = Math.min(bytes, half.held);
      half.held -= back;
      if (back > 0) this.creditConnection(back);
    }
    half.unacked += bytes;
    if (half.remoteClosed) return;
    if (half.unacked >= this.local.streamWindow / 2) {
      this.write(windowUpdateFrame(half.id, half.unacked));
      half.recvWindow += half.unacked;
      half.unacked = 0;
    }
  }

  /** Gives connection-level receive window back, once half of the window was used. */
  creditConnection(bytes: number): void {
    this.#consumed += bytes;
    if (this.#consumed >= this.local.connectionWindow / 2) {
      this.write(windowUpdateFrame(0, this.#consumed));
      this.#recvWindow += this.#consumed;
      this.#consumed = 0;
    }
  }

  /** A stream is forgotten: what it received and never passed on frees the connection window. */
  release(half: StreamHalf): void {
    if (half.held > 0) this.creditConnection(half.held);
    half.held = 0;
  }

  /** Sends GOAWAY (no new streams); the subclass closes once its streams are done. */
  goaway(code: number = ERROR.NO_ERROR): void {
    if (this.goingAway || this.closed) return;
    this.goingAway = true;
    this.write(goawayFrame(this.lastPeerStream(), code));
  }

  /** GOAWAY (RFC 9113 §6.8: sent before closing) if not sent yet, then flushes and ends the socket. */
  close(): void {
    if (this.closed) return;
    this.goaway();
    this.#end();
    this.terminate('closed by the relay');
  }

  /** Flushes, ends the socket, and destroys it if the peer has not closed after the grace period. */
  #end(): void {
    this.flush();
    const socket = this.socket;
    socket.end();
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  terminate(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#out = [];
    this.#draining.clear();
    dirty.delete(this);
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.destroy();
    this.onTerminate(reason);
  }

  #fail(error: unknown): void {
    if (error instanceof StreamError) {
      this.writeRst(error.streamId, error.code);
      this.onReset(error.streamId, error.code);
      return;
    }
    const code = error instanceof ConnectionError ? error.code : ERROR.INTERNAL_ERROR;
    const message = error instanceof Error ? error.message : String(error);
    this.write(goawayFrame(this.lastPeerStream(), code));
    this.#end();
    this.terminate(`HTTP/2 error ${code}: ${message}`);
  }

  // --- reading -------------------------------------------------------------------------------

  #onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    try {
      this.#dispatch(type, flags, streamId, payload);
    } catch (error) {
      if (!(error instanceof StreamError)) throw error;
      // A stream error ends that stream only (§5.4.2); the connection reads on.
      this.writeRst(error.streamId, error.code);
      this.onReset(error.streamId, error.code);
    }
  }

  /** Counts a frame that moves nothing forward against the noise budget (see NOISE_BURST). */
  protected noise(): void {
    if (!this.#noise.spend()) {
      throw new ConnectionError(ERROR.ENHANCE_YOUR_CALM, 'Too many frames that carry no request');
    }
  }

  #dispatch(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.#sawSettings && type !== FRAME.SETTINGS) {
      throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'The first frame must be SETTINGS');
    }
    // §6.10: nothing may come between a header block's frames.
    if (this.#block !== undefined && (type !== FRAME.CONTINUATION || streamId !== this.#block.streamId)) {
      throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'Header block interrupted');
    }
    switch (type) {
      case FRAME.DATA:
        return this.#data(flags, streamId, payload);
      case FRAME.HEADERS:
        return this.#headers(flags, streamId, payload);
      case FRAME.CONTINUATION:
        return this.#continuation(flags, streamId, payload);
      case FRAME.PRIORITY:
        // §6.3: PRIORITY is parsed for validity and otherwise ignored (§5.3.2).
        this.noise();
        if (streamId === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) throw new StreamError(streamId, ERROR.FRAME_SIZE_ERROR, 'PRIORITY size');
        return;
      case FRAME.RST_STREAM:
        if (streamId === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (payload.length !== 4) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'RST_STREAM size');
        this.checkKnown(streamId);
        return this.onReset(streamId, payload.readUInt32BE(0));
      case FRAME.SETTINGS:
        this.noise();
        return this.#settings(flags, streamId, payload);
      case FRAME.PUSH_PROMISE:
        // We announced ENABLE_PUSH 0, and a client never pushes (§8.4).
        throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'PUSH_PROMISE');
      case FRAME.PING:
        this.noise();
        if (streamId !== 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'PING size');
        if ((flags & FLAG.ACK) === 0) this.write(frame(FRAME.PING, FLAG.ACK, 0, payload));
        return;
      case FRAME.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (payload.length < 8) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'GOAWAY size');
        return this.onGoaway(payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4));
      case FRAME.WINDOW_UPDATE:
        return this.#windowUpdate(streamId, payload);
      default:
        // §5.5: unknown frame types are ignored.
        this.noise();
        return;
    }
  }

  #data(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'DATA on stream 0');
    const data = unpad(payload, flags, 0);
    if (data.length === 0 && (flags & FLAG.END_STREAM) === 0) this.noise();
    // §6.9: the whole frame payload counts, padding included; the connection window first.
    if (payload.length > this.#recvWindow) {
      throw new ConnectionError(ERROR.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    }
    this.#recvWindow -= payload.length;
    if (this.local.eagerConnectionWindow) this.creditConnection(payload.length);
    this.onData(streamId, data, (flags & FLAG.END_STREAM) !== 0, payload.length);
  }

  #headers(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const priority = (flags & FLAG.PRIORITY) !== 0;
    const fragment = unpad(payload, flags, priority ? 5 : 0);
    // §5.3.1: a stream cannot depend on itself (a stream error, once the block is decoded).
    const at = (flags & FLAG.PADDED) !== 0 ? 1 : 0;
    const selfDependent = priority && (payload.readUInt32BE(at) & 0x7fffffff) === streamId;
    this.#block = {
      streamId,
      flags,
      parts: [fragment],
      size: FRAME_HEADER + fragment.length,
      continuations: 0,
      selfDependent,
    };
    if ((flags & FLAG.END_HEADERS) !== 0) this.#endBlock();
  }

  #continuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.#block;
    if (block === undefined) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    block.size += FRAME_HEADER + payload.length;
    if (block.size > MAX_HEADER_BLOCK) {
      throw new ConnectionError(ERROR.ENHANCE_YOUR_CALM, 'Header block too large');
    }
    if (++block.continuations > MAX_CONTINUATIONS) {
      throw new ConnectionError(ERROR.ENHANCE_YOUR_CALM, 'Too many CONTINUATION frames');
    }
    if (payload.length > 0) block.parts.push(payload);
    if ((flags & FLAG.END_HEADERS) !== 0) this.#endBlock();
  }

  /** Decodes a finished block; a block that cannot be decoded breaks the whole connection (§4.3). */
  #endBlock(): void {
    const block = this.#block;
    this.#block = undefined;
    if (block === undefined) throw new ConnectionError(ERROR.INTERNAL_ERROR, 'No header block');
    const bytes = block.parts.length === 1 ? (block.parts[0] ?? Buffer.alloc(0)) : Buffer.concat(block.parts);
    let decoded;
    try {
      decoded = this.decoder.decode(bytes, this.local.maxHeaderListSize);
    } catch (error) {
      if (error instanceof HpackError) throw new ConnectionError(ERROR.COMPRESSION_ERROR, error.message);
      throw error;
    }
    if (block.selfDependent) {
      throw new StreamError(block.streamId, ERROR.PROTOCOL_ERROR, 'Stream depends on itself');
    }
    this.onHeaders(
      block.streamId,
      decoded.fields,
      decoded.tooLarge,
      (block.flags & FLAG.END_STREAM) !== 0,
      block.size,
    );
  }

  #settings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & FLAG.ACK) !== 0) {
      if (payload.length !== 0)
        throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'SETTINGS ACK with payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'SETTINGS size');
    this.#sawSettings = true;
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      switch (id) {
        case SETTING.HEADER_TABLE_SIZE:
          this.encoder.tableSizeChanged();
          break;
        case SETTING.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'ENABLE_PUSH not 0 or 1');
          break;
        case SETTING.MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        case SETTING.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW)
            throw new ConnectionError(ERROR.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          if (delta !== 0) this.onInitialWindow(delta);
          break;
        }
        case SETTING.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 0xffffff) {
            throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
          }
          this.peerMaxFrame = value;
          break;
        default:
          // §6.5.2: unknown settings are ignored.
          break;
      }
    }
    this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    this.onSettings();
  }

  /** The peer's SETTINGS were applied. */
  protected onSettings(): void {}

  /** Adds a stream WINDOW_UPDATE's increment to `half` (RFC 9113 §6.9.1: at most 2^31-1). */
  protected growStreamWindow(id: number, half: StreamHalf, increment: number): void {
    if (half.sendWindow + increment > MAX_WINDOW) {
      throw new StreamError(id, ERROR.FLOW_CONTROL_ERROR, 'Stream window over 2^31-1');
    }
    half.sendWindow += increment;
  }

  /** Applies a change of the peer's SETTINGS_INITIAL_WINDOW_SIZE to open streams (§6.9.2). */
  protected shiftStreamWindows(halves: Iterable<StreamHalf>, delta: number): void {
    for (const half of halves) {
      if (half.sendWindow + delta > MAX_WINDOW) {
        throw new ConnectionError(ERROR.FLOW_CONTROL_ERROR, 'Stream window over 2^31-1');
      }
      half.sendWindow += delta;
    }
  }

  #windowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    // Credit in crumbs makes DATA in crumbs (and resumes every blocked stream each time).
    if (increment < SMALL_WINDOW_UPDATE) this.noise();
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      if (this.sendWindow + increment > MAX_WINDOW) {
        throw new ConnectionError(ERROR.FLOW_CONTROL_ERROR, 'Connection window over 2^31-1');
      }
      this.sendWindow += increment;
      const waiting = [...this.blocked];
      this.blocked.clear();
      for (const half of waiting) this.resume(half);
      return;
    }
    if (increment === 0) throw new StreamError(streamId, ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    this.onStreamWindow(streamId, increment);
  }

  /** Sends more of a half that waited for connection credit. */
  protected abstract resume(half: StreamHalf): void;
}
