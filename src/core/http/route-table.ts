/**
 * Which methods each registered path pattern accepts, so that a request to a known path with
 * the wrong method gets 405 and an `Allow` header (RFC 9110 section 15.5.6) instead of 404.
 * Fastify's router only answers "no route", so the patterns are mirrored here from `onRoute`.
 */
export interface RouteTable {
  add(method: string, pattern: string): void;
  /** Methods registered for patterns that match `path`, sorted; empty when the path is unknown. */
  allowed(path: string): string[];
}

function escape(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Converts a find-my-way pattern (`/a/:id`, `/f/*`, `/r/:n(^\\d+)`) to an anchored RegExp. */
export function patternToRegExp(pattern: string): RegExp {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] ?? '';
    if (c === '*') {
      out += '.*';
      i += 1;
    } else if (c === ':' && pattern[i + 1] === ':') {
      // `::` is an escaped literal colon in find-my-way.
      out += ':';
      i += 2;
    } else if (c === ':') {
      const name = /^:[A-Za-z0-9_]+/.exec(pattern.slice(i))?.[0] ?? ':';
      i += name.length;
      if (pattern[i] === '(') {
        let depth = 0;
        let j = i;
        for (; j < pattern.length; j++) {
          if (pattern[j] === '(') depth += 1;
          if (pattern[j] === ')') depth -= 1;
          if (depth === 0) break;
        }
        const inner = pattern
          .slice(i + 1, j)
          .replace(/^\^/, '')
          .replace(/\$$/, '');
        out += `(?:${inner})`;
        i = j + 1;
      } else {
        out += '[^/]+';
      }
    } else {
      out += escape(c);
      i += 1;
    }
  }
  return new RegExp(`^${out}$`);
}

/** Creates an empty RouteTable. */
export function createRouteTable(): RouteTable {
  const byPattern = new Map<string, { readonly re: RegExp; readonly methods: Set<string> }>();
  return {
    add(method, pattern) {
      let entry = byPattern.get(pattern);
      if (entry === undefined) {
        entry = { re: patternToRegExp(pattern), methods: new Set() };
        byPattern.set(pattern, entry);
      }
      entry.methods.add(method.toUpperCase());
    },
    allowed(path) {
      const methods = new Set<string>();
      for (const { re, methods: m } of byPattern.values())
        if (re.test(path)) for (const x of m) methods.add(x);
      return [...methods].toSorted();
    },
  };
}
