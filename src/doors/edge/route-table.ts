/**
 * Immutable SNI route tables. A new table is built from the whole route set and swapped in with
 * one assignment, so a connection sees either the old or the new table, never a mix.
 */
import type { EdgePolicy, EdgeRoute } from './model.ts';

/** How a route was chosen; a metric label. */
export type MatchKind = 'exact' | 'wildcard' | 'default';

/** A route with its compiled policies. */
export interface CompiledRoute {
  readonly route: EdgeRoute;
  readonly policies: readonly EdgePolicy[];
}

export interface RouteMatch {
  readonly compiled: CompiledRoute;
  readonly kind: MatchKind;
}

interface ListenerRoutes {
  readonly exact: ReadonlyMap<string, CompiledRoute>;
  /** Keyed by the suffix after `*.`, e.g. `example.test`. */
  readonly wildcard: ReadonlyMap<string, CompiledRoute>;
  readonly fallback?: CompiledRoute;
}

/** What routed a terminated connection. */
export interface TerminatedConnection {
  readonly routeId: string;
  readonly listener: string;
  readonly serverName: string | undefined;
}

/** One snapshot of every listener's routes. */
export interface RouteTable {
  readonly version: number;
  readonly routes: readonly EdgeRoute[];
  readonly policies: readonly EdgePolicy[];
  /** Exact host (case-insensitive), then `*.parent` for one label, then the listener default. */
  match(listener: string, serverName: string | undefined): RouteMatch | undefined;
  /** A route by id, for L7 requests that look up policies per request. */
  byId(id: string): CompiledRoute | undefined;
  /**
   * The route a request on a terminated connection goes by: undefined once the route it was
   * accepted for is gone, no longer L7 (passthrough under the same id), or no longer takes the
   * connection's server name on its listener (removed and added again under its id for another
   * host or listener): only new connections take the new route. A changed backend of the same
   * route is followed. (A more specific route that now takes the name is the 421 check's.)
   */
  terminating(connection: TerminatedConnection): CompiledRoute | undefined;
}

/** Whether a route host (exact, `*.parent` or `*`) takes a server name, as `match` compares them. */
function hostCovers(host: string, serverName: string | undefined): boolean {
  const pattern = host.toLowerCase();
  if (pattern === '*') return true;
  if (serverName === undefined) return false;
  const name = serverName.toLowerCase().replace(/\.$/, '');
  if (!pattern.startsWith('*.')) return name === pattern;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
}

/** Builds a table; throws RangeError when two routes of a listener claim the same host. */
export function buildRouteTable(
  routes: readonly EdgeRoute[],
  policies: readonly EdgePolicy[],
  version = 0,
): RouteTable {
  const byListener = new Map<
    string,
    { exact: Map<string, CompiledRoute>; wildcard: Map<string, CompiledRoute>; fallback?: CompiledRoute }
  >();
  const byId = new Map<string, CompiledRoute>();
  for (const route of routes) {
    const compiled: CompiledRoute = { route, policies: policies.filter((p) => p.route === route.id) };
    let entry = byListener.get(route.listener);
    if (entry === undefined) {
      entry = { exact: new Map(), wildcard: new Map() };
      byListener.set(route.listener, entry);
    }
    const host = route.host.toLowerCase();
    const clash = (existing: CompiledRoute | undefined) => {
      if (existing !== undefined) {
        throw new RangeError(
          `Routes "${existing.route.id}" and "${route.id}" both claim host "${host}" on listener "${route.listener}"`,
        );
      }
    };
    if (host === '*') {
      clash(entry.fallback);
      entry.fallback = compiled;
    } else if (host.startsWith('*.')) {
      clash(entry.wildcard.get(host.slice(2)));
      entry.wildcard.set(host.slice(2), compiled);
    } else {
      clash(entry.exact.get(host));
      entry.exact.set(host, compiled);
    }
    byId.set(route.id, compiled);
  }
  const listeners: ReadonlyMap<string, ListenerRoutes> = byListener;
  return {
    version,
    routes,
    policies,
    match(listener, serverName) {
      const entry = listeners.get(listener);
      if (entry === undefined) return undefined;
      if (serverName !== undefined) {
        const name = serverName.toLowerCase().replace(/\.$/, '');
        const exact = entry.exact.get(name);
        if (exact !== undefined) return { compiled: exact, kind: 'exact' };
        const dot = name.indexOf('.');
        const wildcard = dot > 0 ? entry.wildcard.get(name.slice(dot + 1)) : undefined;
        if (wildcard !== undefined) return { compiled: wildcard, kind: 'wildcard' };
      }
      return entry.fallback === undefined ? undefined : { compiled: entry.fallback, kind: 'default' };
    },
    byId: (id) => byId.get(id),
    terminating(connection) {
      const compiled = byId.get(connection.routeId);
      if (compiled === undefined || compiled.route.mode !== 'l7') return undefined;
      const { route } = compiled;
      return route.listener === connection.listener && hostCovers(route.host, connection.serverName)
        ? compiled
        : undefined;
    },
  };
}
