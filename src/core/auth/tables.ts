import type { Migration } from '#core/storage';

/** A row of `auth_users`. Booleans are integers so that SQLite and PostgreSQL agree. */
export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  disabled: number;
  failed_logins: number;
  last_failure_at: number | null;
  locked_until: number | null;
  created_at: number;
  updated_at: number;
  last_login_at: number | null;
}

/**
 * A row of `auth_login_failures`: the failed logins of one account from one client address
 * (an IPv6 /64), which back off and lock that pair only.
 */
export interface LoginFailureRow {
  user_id: string;
  address: string;
  failed_logins: number;
  last_failure_at: number;
  locked_until: number | null;
}

/**
 * A row of `auth_known_addresses`: the last successful login of one account from one client
 * address (an IPv6 /64). Addresses that logged in recently are exempt from the account-wide
 * backoff.
 */
export interface KnownAddressRow {
  user_id: string;
  address: string;
  last_login_at: number;
}

/** A row of `auth_refresh_tokens`; the secret is stored as its SHA-256. */
export interface RefreshTokenRow {
  id: string;
  family_id: string;
  user_id: string;
  secret_hash: string;
  parent_id: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

/** A row of `auth_api_keys`; bindings and CIDRs are JSON text. */
export interface ApiKeyRow {
  id: string;
  name: string;
  owner_id: string;
  secret_hash: string;
  bindings: string;
  allowed_cidrs: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** A row of `auth_signing_keys`: the public half of one replica's signing key. */
export interface SigningKeyRow {
  kid: string;
  public_jwk: string;
  created_at: number;
  retired_at: number | null;
}

/** The tables of core/auth. */
export interface AuthTables {
  auth_users: UserRow;
  auth_refresh_tokens: RefreshTokenRow;
  auth_api_keys: ApiKeyRow;
  auth_signing_keys: SigningKeyRow;
  auth_login_failures: LoginFailureRow;
  auth_known_addresses: KnownAddressRow;
}

/** Forward-only migrations of core/auth (module `core-auth`). */
export const AUTH_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_users',
    async up(db) {
      await db.schema
        .createTable('auth_users')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('username', 'varchar(128)', (c) => c.notNull().unique())
        .addColumn('password_hash', 'varchar(256)', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_failure_at', 'bigint')
        .addColumn('locked_until', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_login_at', 'bigint')
        .execute();
    },
  },
  {
    id: '0002_refresh_tokens',
    async up(db) {
      await db.schema
        .createTable('auth_refresh_tokens')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('family_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('parent_id', 'varchar(64)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('auth_refresh_tokens_family')
        .on('auth_refresh_tokens')
        .column('family_id')
        .execute();
      await db.schema
        .createIndex('auth_refresh_tokens_user')
        .on('auth_refresh_tokens')
        .column('user_id')
        .execute();
    },
  },
  {
    id: '0003_api_keys',
    async up(db) {
      await db.schema
        .createTable('auth_api_keys')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(128)', (c) => c.notNull())
        .addColumn('owner_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('bindings', 'text', (c) => c.notNull())
        .addColumn('allowed_cidrs', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .execute();
      await db.schema.createIndex('auth_api_keys_owner').on('auth_api_keys').column('owner_id').execute();
    },
  },
  {
    id: '0004_signing_keys',
    async up(db) {
      await db.schema
        .createTable('auth_signing_keys')
        .addColumn('kid', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('retired_at', 'bigint')
        .execute();
    },
  },
  {
    id: '0005_login_failures',
    async up(db) {
      await db.schema
        .createTable('auth_login_failures')
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('address', 'varchar(64)', (c) => c.notNull())
        .addColumn('failed_logins', 'integer', (c) => c.notNull())
        .addColumn('last_failure_at', 'bigint', (c) => c.notNull())
        .addColumn('locked_until', 'bigint')
        .addPrimaryKeyConstraint('auth_login_failures_pk', ['user_id', 'address'])
        .execute();
    },
  },
  {
    id: '0006_known_addresses',
    async up(db) {
      await db.schema
        .createTable('auth_known_addresses')
        .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('address', 'varchar(64)', (c) => c.notNull())
        .addColumn('last_login_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('auth_known_addresses_pk', ['user_id', 'address'])
        .execute();
    },
  },
];
