/**
 * The connection firewall: deny wins, then a non-empty allow list must match. It is evaluated on
 * the real client address (from PROXY when the listener trusts its peer), before any TLS byte is
 * answered, so a blocked client sees a reset and no alert.
 */
import { type CidrMatcher, createCidrMatcher } from '#core/auth';

/** Rules as configured: addresses or CIDR blocks. */
export interface FirewallRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export type FirewallVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'denied' | 'not-allowed' };

/** An immutable compiled rule set. */
export interface Firewall {
  check(address: string): FirewallVerdict;
}

const ALLOWED: FirewallVerdict = { allowed: true };

/** Compiles rules; throws TypeError on a bad entry. */
export function createFirewall(rules: FirewallRules): Firewall {
  const allow: CidrMatcher = createCidrMatcher(rules.allow);
  const deny: CidrMatcher = createCidrMatcher(rules.deny);
  return {
    check(address) {
      if (deny.matches(address)) return { allowed: false, reason: 'denied' };
      if (allow.cidrs.length > 0 && !allow.matches(address)) return { allowed: false, reason: 'not-allowed' };
      return ALLOWED;
    },
  };
}
