/**
 * The ledger's hash chain. Each entry's hash is sha256(prev_hash + "\n" + canonical JSON of the entry's
 * fields), with canonical JSON = keys sorted, no whitespace, numbers as JavaScript prints them (shortest
 * round-trip form). The first entry of a dataset chains from GENESIS_HASH. An exported ledger can be
 * checked with nothing but this file's rules (see docs/ledger.md).
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('canonical JSON has no representation for non-finite numbers');
    return JSON.stringify(value);
  }
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new Error(`canonical JSON cannot encode ${typeof value}`);
}

/** The fields of an entry that its hash covers (everything but the hash itself). */
export interface HashedEntryFields {
  id: string;
  datasetId: string;
  seq: number;
  kind: string;
  reservationId: string | null;
  events: unknown[];
  requesterId: string | null;
  requesterName: string | null;
  purpose: string;
  details: Record<string, unknown>;
  epsilonLimit: number;
  epsilonSpent: number;
  epsilonReserved: number;
  accountant: string;
  createdAt: Date | string;
  prevHash: string;
}

/** The entry as hashed (and as exported): every field but prevHash and hash, createdAt as ISO text. */
export function hashedPayload(e: Omit<HashedEntryFields, 'prevHash'>): Record<string, unknown> {
  return {
    id: e.id,
    datasetId: e.datasetId,
    seq: e.seq,
    kind: e.kind,
    reservationId: e.reservationId,
    events: e.events,
    requesterId: e.requesterId,
    requesterName: e.requesterName,
    purpose: e.purpose,
    details: e.details,
    epsilonLimit: e.epsilonLimit,
    epsilonSpent: e.epsilonSpent,
    epsilonReserved: e.epsilonReserved,
    accountant: e.accountant,
    createdAt: typeof e.createdAt === 'string' ? e.createdAt : e.createdAt.toISOString(),
  };
}

export function entryHash(e: HashedEntryFields): string {
  return createHash('sha256').update(`${e.prevHash}\n${canonicalJson(hashedPayload(e))}`).digest('hex');
}

export interface ChainVerification {
  valid: boolean;
  entries: number;
  /** seq of the first entry whose hash or link does not check out. */
  firstInvalidEntry: number | null;
  reason: string | null;
}

/** Verifies entries of one dataset, in seq order: consecutive seqs, each prev_hash links, each hash recomputes. */
export function verifyChain(entries: (HashedEntryFields & { hash: string })[]): ChainVerification {
  let prev = GENESIS_HASH;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const fail = (reason: string): ChainVerification => ({ valid: false, entries: entries.length, firstInvalidEntry: e.seq, reason });
    if (e.seq !== i + 1) return fail(`expected entry ${i + 1}, found ${e.seq}`);
    if (e.prevHash !== prev) return fail(`entry ${e.seq} does not link to the hash of entry ${i}`);
    if (entryHash(e) !== e.hash) return fail(`entry ${e.seq} does not match its hash`);
    prev = e.hash;
  }
  return { valid: true, entries: entries.length, firstInvalidEntry: null, reason: null };
}
