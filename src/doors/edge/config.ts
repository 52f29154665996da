/**
 * The `edge` configuration section. Listeners are static (a restart changes them); their
 * firewall rules are dynamic. Routes and policies here only seed the database on first start;
 * after that the admin API and the CLI own them.
 */
import {
  array,
  boolean,
  duration,
  type Infer,
  integer,
  number,
  object,
  oneOf,
  optional,
  size,
  string,
} from '#core/config';
import { BACKEND_PROTOCOLS, POLICY_KINDS, ROUTE_MODES } from './model.ts';

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

const listenerSchema = object(
  {
    id: string('Listener name, referenced by routes', {
      pattern: NAME,
      format: 'a name of a-z, 0-9, "_", "." and "-"',
    }),
    host: string('Address to bind', { default: '0.0.0.0', minLength: 1 }),
    port: integer('TCP port to bind (0 picks a free one)', { min: 0, max: 65535 }),
    proxyProtocol: boolean(
      'Expect a PROXY v1/v2 header from every peer; peers outside trustedProxies are reset',
      {
        default: false,
      },
    ),
    trustedProxies: array(string('An address or CIDR block'), 'Peers allowed to send a PROXY header', {
      default: [],
    }),
    maxConnections: integer('Concurrent connections; the admin API can override it at run time', {
      default: 10_000,
      min: 1,
    }),
    connectionRate: object(
      {
        rate: number('New connections per second per client address; 0 turns the limit off', {
          default: 0,
          min: 0,
        }),
        burst: integer('Bucket size of the per-client connection rate', { default: 50, min: 1 }),
      },
      'Per-client-address connection rate limit',
    ),
    firewall: object(
      {
        allow: array(string('An address or CIDR block'), 'When not empty, only these client addresses', {
          default: [],
        }),
        deny: array(string('An address or CIDR block'), 'Client addresses always reset', { default: [] }),
      },
      { description: 'Allow/deny rules on the real client address', dynamic: true },
    ),
    preludeTimeout: duration('Deadline for the PROXY header and ClientHello', { default: '5s', min: 1 }),
    connectTimeout: duration('Deadline for connecting to a backend', { default: '5s', min: 1 }),
    idleTimeout: duration('Close a connection with no traffic either way for this long', {
      default: '5m',
      min: 1,
    }),
    responseTimeout: duration('L7: deadline for backend response headers after the request body', {
      default: '60s',
      min: 1,
    }),
    requestHeaderTimeout: duration(
      "L7 HTTP/1.1: deadline for a whole request head, from the first byte of a request (or the start of the connection) to the end of its header section; over it the client gets 408 and the connection closes (like HAProxy's timeout http-request)",
      { default: '10s', min: 1 },
    ),
    streamIdleTimeout: duration(
      'L7: end an HTTP/2 request stream with no HEADERS or DATA either way for this long (408 when no response began)',
      { default: '5m', min: 1 },
    ),
    maxStreamsPerClient: integer(
      'L7: requests in flight to backends per client (an address, or an IPv6 /64) on this listener, over all its connections; beyond it 429. The HTTP/2 relay also keeps each client to a quarter of what its backend pool carries',
      { default: 256, min: 1 },
    ),
    maxHelloBytes: size('Cap on the ClientHello over all its records', {
      default: '64KiB',
      min: 512,
      max: 65_536,
    }),
    minTlsVersion: oneOf(['TLSv1.2', 'TLSv1.3'] as const, 'Lowest TLS version for L7 routes', {
      default: 'TLSv1.3',
    }),
    http2Relay: boolean(
      'L7: relay HTTP/2 clients of h2c and h2 routes frame by frame (ADR 0150); false uses node:http2 streams for them',
      { default: true },
    ),
  },
  'One TLS listener',
);

const routeSchema = object(
  {
    id: string('Route name', { pattern: NAME, format: 'a name of a-z, 0-9, "_", "." and "-"' }),
    listener: string('Listener id this route belongs to', { pattern: NAME }),
    host: string(
      'SNI host name (at most 253 characters, labels of at most 63), "*.domain" (one label) or "*" (listener default)',
      { minLength: 1 },
    ),
    mode: oneOf(ROUTE_MODES, 'l4 passes TLS through; l7 terminates it', { default: 'l4' }),
    backend: string('Backend "host:port"', { minLength: 3 }),
    backendProtocol: optional(
      oneOf(BACKEND_PROTOCOLS, 'L7 backend protocol (http1 when absent); an l4 route refuses it'),
    ),
    backendProxyProtocol: boolean('Send a PROXY v2 header (AUTHORITY = SNI) to the backend', {
      default: false,
    }),
    backendCaFile: optional(string('L7: PEM CA file trusted for a TLS backend')),
    certFile: optional(string('L7: certificate chain PEM file (reloaded on change)')),
    keyFile: optional(string('L7: private key PEM file (reloaded on change)')),
  },
  'One SNI route',
);

const policySchema = object(
  {
    id: string('Policy name', { pattern: NAME }),
    route: string('Id of an l7 route', { pattern: NAME }),
    kind: oneOf(POLICY_KINDS, 'What the policy checks'),
    header: optional(string('require-header: the header name')),
    value: optional(string('block-user-agent: the substring; require-header: the exact value')),
  },
  'One L7 policy',
);

/** The `edge` section. */
export const edgeConfigSchema = object(
  {
    enabled: boolean('Run the edge door', { default: false }),
    listeners: array(listenerSchema, 'TLS listeners', { default: [] }),
    routes: array(
      routeSchema,
      {
        description:
          'Routes seeded into the database on first start; later changes here are not applied (a reload logs a warning): routes change through the API',
        dynamic: true,
      },
      {
        default: [],
      },
    ),
    policies: array(
      policySchema,
      {
        description:
          'L7 policies seeded on first start; later changes here are not applied (a reload logs a warning): policies change through the API',
        dynamic: true,
      },
      { default: [] },
    ),
    pollInterval: duration('How often to pick up route changes made by other replicas', {
      default: '2s',
      min: 10,
    }),
  },
  'Edge door: SNI router with L4 passthrough and L7 termination',
);

export type EdgeConfig = Infer<typeof edgeConfigSchema>;
export type EdgeListenerConfig = EdgeConfig['listeners'][number];
