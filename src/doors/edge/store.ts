/**
 * Routes, policies and listener limits in the database. Every change bumps one revision row in the
 * same transaction, so replicas notice changes by reading a single integer.
 */
import type { Kysely } from 'kysely';
import type { Database, MigrationSet } from '#core/storage';
import { isUniqueViolation } from '#core/storage';
import type { EdgePolicy, EdgeRoute, ListenerLimits } from './model.ts';

interface RouteRow {
  id: string;
  listener: string;
  host: string;
  mode: string;
  backend: string;
  backend_protocol: string;
  backend_proxy_protocol: number;
  backend_ca_file: string | null;
  cert_file: string | null;
  key_file: string | null;
}

interface PolicyRow {
  id: string;
  route: string;
  kind: string;
  header: string | null;
  value: string | null;
}

interface Tables {
  edge_routes: RouteRow;
  edge_policies: PolicyRow;
  edge_listener_limits: { listener: string; max_connections: number };
  edge_state: { id: number; revision: number; seeded: number };
}

/** The door's forward-only migrations. */
export const EDGE_MIGRATIONS: MigrationSet = {
  module: 'edge',
  migrations: [
    {
      id: '0001_edge_routes',
      async up(db) {
        await db.schema
          .createTable('edge_routes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('listener', 'text', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('mode', 'text', (c) => c.notNull())
          .addColumn('backend', 'text', (c) => c.notNull())
          .addColumn('backend_protocol', 'text', (c) => c.notNull())
          .addColumn('backend_proxy_protocol', 'integer', (c) => c.notNull())
          .addColumn('backend_ca_file', 'text')
          .addColumn('cert_file', 'text')
          .addColumn('key_file', 'text')
          .execute();
        // One host per listener: the route table relies on it.
        await db.schema
          .createIndex('edge_routes_host')
          .on('edge_routes')
          .columns(['listener', 'host'])
          .unique()
          .execute();
        await db.schema
          .createTable('edge_policies')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('route', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('header', 'text')
          .addColumn('value', 'text')
          .execute();
        await db.schema
          .createTable('edge_listener_limits')
          .addColumn('listener', 'text', (c) => c.primaryKey())
          .addColumn('max_connections', 'integer', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('edge_state')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('seeded', 'integer', (c) => c.notNull())
          .execute();
        await db.insertInto('edge_state').values({ id: 1, revision: 0, seeded: 0 }).execute();
      },
    },
  ],
};

/** Everything the data plane needs, read at one revision. */
export interface EdgeSnapshot {
  readonly revision: number;
  readonly routes: readonly EdgeRoute[];
  readonly policies: readonly EdgePolicy[];
  readonly limits: readonly ListenerLimits[];
}

/** Thrown when an id or a listener/host pair is taken; the API maps it to a conflict. */
export class EdgeConflictError extends Error {
  override readonly name = 'EdgeConflictError';
}

function toRoute(row: RouteRow): EdgeRoute {
  return {
    id: row.id,
    listener: row.listener,
    host: row.host,
    mode: row.mode === 'l7' ? 'l7' : 'l4',
    backend: row.backend,
    backendProtocol: row.backend_protocol as EdgeRoute['backendProtocol'],
    backendProxyProtocol: row.backend_proxy_protocol === 1,
    ...(row.backend_ca_file === null ? {} : { backendCaFile: row.backend_ca_file }),
    ...(row.cert_file === null ? {} : { certFile: row.cert_file }),
    ...(row.key_file === null ? {} : { keyFile: row.key_file }),
  };
}

function toRouteRow(route: EdgeRoute): RouteRow {
  return {
    id: route.id,
    listener: route.listener,
    host: route.host,
    mode: route.mode,
    backend: route.backend,
    backend_protocol: route.backendProtocol,
    backend_proxy_protocol: route.backendProxyProtocol ? 1 : 0,
    backend_ca_file: route.backendCaFile ?? null,
    cert_file: route.certFile ?? null,
    key_file: route.keyFile ?? null,
  };
}

function toPolicy(row: PolicyRow): EdgePolicy {
  return {
    id: row.id,
    route: row.route,
    kind: row.kind === 'require-header' ? 'require-header' : 'block-user-agent',
    ...(row.header === null ? {} : { header: row.header }),
    ...(row.value === null ? {} : { value: row.value }),
  };
}

/** Data access for the edge door. */
export class EdgeStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  #k(): Kysely<Tables> {
    return this.#db.kysely<Tables>();
  }

  async revision(): Promise<number> {
    const row = await this.#k()
      .selectFrom('edge_state')
      .select('revision')
      .where('id', '=', 1)
      .executeTakeFirst();
    return Number(row?.revision ?? 0);
  }

  async snapshot(): Promise<EdgeSnapshot> {
    const k = this.#k();
    const [revision, routes, policies, limits] = await Promise.all([
      this.revision(),
      k.selectFrom('edge_routes').selectAll().orderBy('id').execute(),
      k.selectFrom('edge_policies').selectAll().orderBy('id').execute(),
      k.selectFrom('edge_listener_limits').selectAll().orderBy('listener').execute(),
    ]);
    return {
      revision,
      routes: routes.map(toRoute),
      policies: policies.map(toPolicy),
      limits: limits.map((l) => ({ listener: l.listener, maxConnections: Number(l.max_connections) })),
    };
  }

  /** Runs a change and bumps the revision in one transaction; unique violations become conflicts. */
  async #change<T>(fn: (trx: Kysely<Tables>) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction<T, Tables>(async (trx) => {
        const out = await fn(trx);
        await trx
          .updateTable('edge_state')
          .set((eb) => ({ revision: eb('revision', '+', 1) }))
          .where('id', '=', 1)
          .execute();
        return out;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new EdgeConflictError('Already exists', { cause: error });
      throw error;
    }
  }

  /** Seeds routes and policies from configuration once per database (first start). */
  async seed(routes: readonly EdgeRoute[], policies: readonly EdgePolicy[]): Promise<boolean> {
    return this.#change(async (trx) => {
      const state = await trx
        .selectFrom('edge_state')
        .select('seeded')
        .where('id', '=', 1)
        .executeTakeFirst();
      if (Number(state?.seeded ?? 0) === 1) return false;
      for (const route of routes) await trx.insertInto('edge_routes').values(toRouteRow(route)).execute();
      for (const policy of policies) {
        await trx
          .insertInto('edge_policies')
          .values({ ...policy, header: policy.header ?? null, value: policy.value ?? null })
          .execute();
      }
      await trx.updateTable('edge_state').set({ seeded: 1 }).where('id', '=', 1).execute();
      return true;
    });
  }

  addRoute(route: EdgeRoute): Promise<void> {
    return this.#change(async (trx) => {
      await trx.insertInto('edge_routes').values(toRouteRow(route)).execute();
    });
  }

  /** Removes a route and its policies; false when it did not exist. */
  removeRoute(id: string): Promise<boolean> {
    return this.#change(async (trx) => {
      await trx.deleteFrom('edge_policies').where('route', '=', id).execute();
      const result = await trx.deleteFrom('edge_routes').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  /**
   * Adds a policy after `check` accepted the route it names as read in the same transaction (so
   * a route another replica removed or replaced since the caller's table was built is seen);
   * an error `check` throws aborts the insert.
   */
  addPolicy(policy: EdgePolicy, check: (route: EdgeRoute | undefined) => void = () => {}): Promise<void> {
    return this.#change(async (trx) => {
      const row = await trx
        .selectFrom('edge_routes')
        .selectAll()
        .where('id', '=', policy.route)
        .executeTakeFirst();
      check(row === undefined ? undefined : toRoute(row));
      await trx
        .insertInto('edge_policies')
        .values({ ...policy, header: policy.header ?? null, value: policy.value ?? null })
        .execute();
    });
  }

  removePolicy(id: string): Promise<boolean> {
    return this.#change(async (trx) => {
      const result = await trx.deleteFrom('edge_policies').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  setMaxConnections(listener: string, maxConnections: number): Promise<void> {
    return this.#change(async (trx) => {
      await trx
        .insertInto('edge_listener_limits')
        .values({ listener, max_connections: maxConnections })
        .onConflict((oc) => oc.column('listener').doUpdateSet({ max_connections: maxConnections }))
        .execute();
    });
  }
}
