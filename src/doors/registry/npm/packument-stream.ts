/**
 * An incremental packument reader: bytes are scanned as they arrive from the uplink, and each
 * version's manifest is parsed and pre-rendered (both forms, tarball URL rewritten) as soon as
 * its closing brace is seen. When the last byte arrives only the policy decision and a join of
 * ready-made strings remain, so a cold fetch of a 10 MB packument costs little more than the
 * download. Values are decoded with the native JSON.parse, one manifest at a time, and the output
 * is re-serialized by us, so what clients parse is exactly what policy saw; later duplicate keys
 * win, as with JSON.parse.
 */
import { createHash, type Hash } from 'node:crypto';
import { parseSemver } from '#core/vulndb';
import { type DeflatePiece, deflatePiece, gzipOfPieces } from '../cache/gzip-splice.ts';
import {
  ABBREVIATED_FIELDS,
  MalformedPackument,
  type PackumentSummary,
  recomputeDistTags,
  type VersionFacts,
} from './packument.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

interface Version {
  readonly facts: Omit<VersionFacts, 'publishedAt'>;
  /** `"<version>":{…}` members of `versions`, in both forms. */
  readonly full: string;
  readonly abbreviated: string;
}

/** Consecutive versions compressed together while the document downloads. */
interface Fragment {
  readonly members: readonly Version[];
  readonly full: DeflatePiece;
  readonly abbreviated: DeflatePiece;
}

/** Text per fragment: large enough to compress well, small enough to redo when one member is refused. */
export const FRAGMENT_CHARS = 64 * 1024;
const COMMA_PIECE = deflatePiece(',');

/**
 * What the two forms consist of once policy has decided: a head, the kept versions, and a tail
 * that ends with the kept `time` object (`<tail><time>`), the same text in both forms.
 */
interface Layout {
  readonly kept: readonly Version[];
  readonly full: { readonly head: string; readonly tail: string };
  readonly abbreviated: { readonly head: string; readonly tail: string };
  /** `<kept time as JSON>}`, the end of both documents. */
  readonly time: string;
}

/**
 * Bumped whenever rendering changes (the identity bytes or how the gzip form is made), so ETags
 * derived from inputs change with the output.
 */
const RENDER_FORMAT = 'packument-render-3';

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export class PackumentStream {
  readonly #name: string;
  readonly #base: string;
  readonly #fileBase: string;
  #buf: Buffer;
  #len = 0;
  #pos = 0;
  #depth = 0;
  #inString = false;
  #stringStart = -1;
  #lastString: [number, number] | undefined;
  #rootDone = false;
  #topKey: string | undefined;
  #topValueStart = -1;
  #inVersions = false;
  #versionsOpened = false;
  #verKey: string | undefined;
  #verValueStart = -1;
  readonly #others = new Map<string, unknown>();
  #versions = new Map<string, Version>();
  #summary: PackumentSummary | undefined;
  readonly #hash: Hash = createHash('sha256');
  /** Characters of versions compressed together as they arrive (for `renderGzip`); 0 for none. */
  readonly #fragmentChars: number;
  #sealed: Fragment[] = [];
  #unsealed: Version[] = [];
  #unsealedChars = 0;

  constructor(name: string, tarballBase: string, sizeHint = 1 << 20, fragmentChars = 0) {
    this.#name = name;
    this.#base = tarballBase;
    this.#fragmentChars = fragmentChars;
    this.#fileBase = name.slice(name.lastIndexOf('/') + 1);
    // Never from the shared pool: the worker hands these bytes to the main thread by transfer.
    this.#buf = Buffer.allocUnsafeSlow(Math.max(1024, Math.min(sizeHint, 512 << 20)));
  }

  /** Bytes received so far (the raw document, for the cache); a view of a buffer of its own. */
  raw(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  push(chunk: Uint8Array): void {
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    this.#hash.update(chunk);
    this.#scan();
  }

  #scan(): void {
    const buf = this.#buf;
    const len = this.#len;
    const view = buf.subarray(0, len);
    for (let i = this.#pos; i < len; i++) {
      if (this.#inString) {
        // Jump to the closing quote natively: strings (descriptions, readmes) are most of the bytes.
        const q = this.#closingQuote(view, i);
        if (q < 0) {
          i = len;
          break;
        }
        this.#inString = false;
        this.#lastString = [this.#stringStart, q + 1];
        i = q;
        continue;
      }
      const c = buf[i] as number;
      if (this.#rootDone) {
        if (!isSpace(c)) throw new MalformedPackument('data after the end of the document');
        continue;
      }
      if (c === QUOTE) {
        this.#inString = true;
        this.#stringStart = i;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.#open(c, i);
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) this.#close(i);
      else if (c === COLON) this.#colon(i);
      else if (c === COMMA) this.#comma(i);
      else if (this.#depth === 0 && !isSpace(c))
        throw new MalformedPackument('the document is not a JSON object');
    }
    this.#pos = len;
  }

  /**
   * The next unescaped quote at or after `from`, or -1. A quote is escaped when an odd run of
   * backslashes precedes it; counting back over the whole buffer keeps this right across chunks.
   */
  #closingQuote(view: Buffer, from: number): number {
    let q = from;
    for (;;) {
      q = view.indexOf(QUOTE, q);
      if (q < 0) return -1;
      let run = 0;
      for (let k = q - 1; k > this.#stringStart && view[k] === BACKSLASH; k--) run++;
      if (run % 2 === 0) return q;
      q += 1;
    }
  }

  #key(): string {
    const span = this.#lastString;
    if (span === undefined) throw new MalformedPackument('a key is missing');
    return JSON.parse(this.#buf.toString('utf8', span[0], span[1])) as string;
  }

  #open(c: number, i: number): void {
    if (this.#depth === 0 && c !== OPEN_BRACE)
      throw new MalformedPackument('the document is not a JSON object');
    this.#depth += 1;
    // The object right after `"versions":` is read member by member.
    if (
      this.#depth === 2 &&
      c === OPEN_BRACE &&
      this.#topKey === 'versions' &&
      this.#onlySpace(this.#topValueStart, i)
    ) {
      this.#inVersions = true;
      this.#versionsOpened = true;
      this.#versions = new Map();
      this.#sealed = [];
      this.#unsealed = [];
      this.#unsealedChars = 0;
      this.#verValueStart = -1;
    }
  }

  #close(i: number): void {
    if (this.#depth === 2 && this.#inVersions) {
      this.#endVersion(i);
      this.#inVersions = false;
    } else if (this.#depth === 1) {
      this.#endTop(i);
      this.#rootDone = true;
    }
    this.#depth -= 1;
    if (this.#depth < 0) throw new MalformedPackument('unbalanced brackets');
  }

  #colon(i: number): void {
    if (this.#depth === 1) {
      this.#topKey = this.#key();
      this.#topValueStart = i + 1;
    } else if (this.#depth === 2 && this.#inVersions) {
      this.#verKey = this.#key();
      this.#verValueStart = i + 1;
    }
  }

  #comma(i: number): void {
    if (this.#depth === 1) this.#endTop(i);
    else if (this.#depth === 2 && this.#inVersions) this.#endVersion(i);
  }

  #onlySpace(from: number, to: number): boolean {
    for (let k = from; k < to; k++) if (!isSpace(this.#buf[k] as number)) return false;
    return from >= 0;
  }

  #value(from: number, to: number, what: string): unknown {
    try {
      return JSON.parse(this.#buf.toString('utf8', from, to));
    } catch {
      throw new MalformedPackument(`${what} is not valid JSON`);
    }
  }

  #endTop(i: number): void {
    const key = this.#topKey;
    const start = this.#topValueStart;
    if (key === undefined || start < 0) return;
    this.#topValueStart = -1;
    this.#topKey = undefined;
    if (key === 'versions') {
      // This occurrence was read member by member; any other value is not an object.
      if (this.#versionsOpened) {
        this.#versionsOpened = false;
        return;
      }
      throw new MalformedPackument('"versions" is not an object');
    }
    this.#others.delete(key);
    this.#others.set(key, this.#value(start, i, `"${key.slice(0, 100)}"`));
  }

  #endVersion(i: number): void {
    const key = this.#verKey;
    if (key === undefined || this.#verValueStart < 0) return;
    const manifest = this.#value(this.#verValueStart, i, `version "${key.slice(0, 100)}"`);
    this.#verValueStart = -1;
    this.#verKey = undefined;
    this.#versions.delete(key);
    if (!isObject(manifest) || parseSemver(key) === undefined) return;
    const dist = isObject(manifest['dist']) ? manifest['dist'] : {};
    const rewritten: Json = {
      ...manifest,
      dist: { ...dist, tarball: `${this.#base}${this.#fileBase}-${key}.tgz` },
    };
    const abbr: Json = {};
    for (const f of ABBREVIATED_FIELDS) if (rewritten[f] !== undefined) abbr[f] = rewritten[f];
    const k = JSON.stringify(key);
    const version: Version = {
      facts: {
        version: key,
        ...(typeof dist['integrity'] === 'string' ? { integrity: dist['integrity'] } : {}),
        ...(typeof dist['shasum'] === 'string' ? { shasum: dist['shasum'] } : {}),
        ...(typeof dist['tarball'] === 'string' ? { tarball: dist['tarball'] } : {}),
      },
      full: `${k}:${JSON.stringify(rewritten)}`,
      abbreviated: `${k}:${JSON.stringify(abbr)}`,
    };
    this.#versions.set(key, version);
    if (this.#fragmentChars === 0) return;
    this.#unsealed.push(version);
    this.#unsealedChars += version.full.length;
    if (this.#unsealedChars >= this.#fragmentChars) this.#seal();
  }

  #seal(): void {
    const members = this.#unsealed;
    if (members.length === 0) return;
    this.#sealed.push({
      members,
      // The fastest level: this form only bridges the time until the whole-document gzip is made.
      full: deflatePiece(members.map((m) => m.full).join(','), 1),
      abbreviated: deflatePiece(members.map((m) => m.abbreviated).join(','), 1),
    });
    this.#unsealed = [];
    this.#unsealedChars = 0;
  }

  /** Whether the top-level object has closed (only whitespace may follow). */
  get complete(): boolean {
    return this.#rootDone && !this.#inString;
  }

  /** Checks the document is complete and names the package; returns what policy needs. */
  end(): PackumentSummary {
    if (!this.#rootDone || this.#inString) throw new MalformedPackument('the document is truncated');
    if (this.#others.get('name') !== this.#name) {
      throw new MalformedPackument(`the document names "${String(this.#others.get('name'))}"`);
    }
    const tags = this.#others.get('dist-tags') ?? {};
    if (!isObject(tags)) throw new MalformedPackument('"dist-tags" is not an object');
    const time = this.#time();
    const distTags: Record<string, string> = {};
    for (const [tag, v] of Object.entries(tags)) if (typeof v === 'string') distTags[tag] = v;
    const versions = [...this.#versions.values()].map((v) => {
      const t =
        typeof time[v.facts.version] === 'string' ? Date.parse(time[v.facts.version] as string) : Number.NaN;
      return { ...v.facts, ...(Number.isFinite(t) ? { publishedAt: t } : {}) };
    });
    this.#summary = { name: this.#name, versions, distTags };
    return this.#summary;
  }

  #time(): Json {
    const t = this.#others.get('time');
    return isObject(t) ? t : {};
  }

  /**
   * A strong ETag for a rendering, derived from the upstream bytes (hashed while they arrived)
   * and every other input of the output: the same inputs always render the same bytes, so the
   * 11 MB output need not be hashed again after the last byte.
   */
  etag(variant: 'full' | 'abbreviated', denied: ReadonlySet<string>): string {
    const raw = this.#rawDigest ?? this.#hash.copy().digest('hex');
    this.#rawDigest = raw;
    const inputs = [RENDER_FORMAT, raw, variant, this.#base, ...[...denied].sort()].join('\u0000');
    return `"${createHash('sha256').update(inputs).digest('base64url').slice(0, 32)}"`;
  }

  #rawDigest: string | undefined;

  /** The kept versions, in document order, and the text around them in both forms. */
  #layout(denied: ReadonlySet<string>): Layout {
    const summary = this.#summary ?? this.end();
    const time = this.#time();
    const keptTime: Json = {};
    for (const key of ['created', 'modified']) if (time[key] !== undefined) keptTime[key] = time[key];
    const kept: Version[] = [];
    for (const [key, v] of this.#versions) {
      if (denied.has(key)) continue;
      kept.push(v);
      if (time[key] !== undefined) keptTime[key] = time[key];
    }
    const distTags = recomputeDistTags(
      summary.distTags,
      kept.map((v) => v.facts.version),
    );
    const rest: Json = {};
    for (const [k, v] of this.#others) if (k !== 'time' && k !== 'dist-tags') rest[k] = v;
    rest['dist-tags'] = distTags;
    // `time` goes last in both forms, so its text (a line per version) is made and compressed once.
    const restText = JSON.stringify(rest);
    const modified = typeof time['modified'] === 'string' ? time['modified'] : this.#others.get('modified');
    return {
      kept,
      full: { head: '{"versions":{', tail: `},${restText.slice(1, -1)},"time":` },
      abbreviated: {
        head: `{"name":${JSON.stringify(this.#name)},"dist-tags":${JSON.stringify(distTags)},"versions":{`,
        tail: [
          '}',
          ...(modified === undefined ? [] : [`"modified":${JSON.stringify(modified)}`]),
          // npm and pnpm age gates read `time` from the abbreviated form too.
          '"time":',
        ].join(','),
      },
      time: `${JSON.stringify(keptTime)}}`,
    };
  }

  /** Joins the pre-rendered versions that policy kept into the full and abbreviated documents. */
  render(denied: ReadonlySet<string>): { full: string; abbreviated: string } {
    const l = this.#layout(denied);
    return {
      full: `${l.full.head}${l.kept.map((v) => v.full).join(',')}${l.full.tail}${l.time}`,
      abbreviated: `${l.abbreviated.head}${l.kept.map((v) => v.abbreviated).join(',')}${l.abbreviated.tail}${l.time}`,
    };
  }

  /**
   * The gzip encodings of exactly what `render` returns, spliced from the fragments compressed
   * during the download: only fragments holding a refused or superseded version are compressed
   * again. Needs a `fragmentChars` above 0.
   */
  renderGzip(denied: ReadonlySet<string>): { full: Buffer; abbreviated: Buffer } {
    if (this.#fragmentChars === 0) throw new Error('This reader does not precompress');
    this.#seal();
    const l = this.#layout(denied);
    // Pieces made after the last byte use the fastest level: they are a small part of the output.
    const piece = (text: string) => deflatePiece(text, 1);
    const full: DeflatePiece[] = [piece(l.full.head)];
    const abbreviated: DeflatePiece[] = [piece(l.abbreviated.head)];
    let first = true;
    for (const f of this.#sealed) {
      const members = f.members.filter(
        (m) => !denied.has(m.facts.version) && this.#versions.get(m.facts.version) === m,
      );
      if (members.length === 0) continue;
      if (!first) {
        full.push(COMMA_PIECE);
        abbreviated.push(COMMA_PIECE);
      }
      first = false;
      const whole = members.length === f.members.length;
      full.push(whole ? f.full : piece(members.map((m) => m.full).join(',')));
      abbreviated.push(whole ? f.abbreviated : piece(members.map((m) => m.abbreviated).join(',')));
    }
    const time = piece(l.time);
    full.push(piece(l.full.tail), time);
    abbreviated.push(piece(l.abbreviated.tail), time);
    return { full: gzipOfPieces(full), abbreviated: gzipOfPieces(abbreviated) };
  }
}
