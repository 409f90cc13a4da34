/**
 * Privacy events (the shared ledger schema) and validation of untrusted input.
 *
 * Neighbouring relation: add-or-remove one example. Sensitivity: 1. Each event is one mechanism
 * self-composed `count` times.
 */
import { PrivacyInputError } from './errors';

export type PrivacyEvent =
  | { type: 'gaussian'; noise_multiplier: number; count: number }
  | { type: 'poisson_subsampled_gaussian'; noise_multiplier: number; sampling_rate: number; count: number }
  | { type: 'laplace'; noise_multiplier: number; count: number };

export type PrivacyEventType = PrivacyEvent['type'];

export type AccountantName = 'exact' | 'rdp' | 'pld' | 'auto';
export type ConcreteAccountant = Exclude<AccountantName, 'auto'>;

/** Largest accepted `count` per event. */
export const MAX_EVENT_COUNT = 1e9;

export const EVENT_TYPES: readonly PrivacyEventType[] = ['gaussian', 'poisson_subsampled_gaussian', 'laplace'];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requireNoise(raw: Record<string, unknown>, field: string): number {
  const v = raw.noise_multiplier;
  if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) {
    throw new PrivacyInputError(`${field}.noise_multiplier`, `must be a finite number > 0 (got ${describe(v)})`);
  }
  return v;
}

function requireCount(raw: Record<string, unknown>, field: string): number {
  const v = raw.count;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_EVENT_COUNT) {
    throw new PrivacyInputError(`${field}.count`, `must be an integer in [1, ${MAX_EVENT_COUNT}] (got ${describe(v)})`);
  }
  return v;
}

function requireSamplingRate(raw: Record<string, unknown>, field: string): number {
  const v = raw.sampling_rate;
  if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0) || v > 1) {
    throw new PrivacyInputError(`${field}.sampling_rate`, `must be a number in (0, 1] (got ${describe(v)})`);
  }
  return v;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? typeof v : s.length > 40 ? s.slice(0, 40) + '...' : s;
  } catch {
    return typeof v;
  }
}

/** Validates one event (untrusted) and returns a clean copy without extra keys. */
export function parsePrivacyEvent(raw: unknown, field = 'event'): PrivacyEvent {
  if (!isPlainObject(raw)) throw new PrivacyInputError(field, `must be an object (got ${describe(raw)})`);
  switch (raw.type) {
    case 'gaussian':
      return { type: 'gaussian', noise_multiplier: requireNoise(raw, field), count: requireCount(raw, field) };
    case 'laplace':
      return { type: 'laplace', noise_multiplier: requireNoise(raw, field), count: requireCount(raw, field) };
    case 'poisson_subsampled_gaussian':
      return {
        type: 'poisson_subsampled_gaussian',
        noise_multiplier: requireNoise(raw, field),
        sampling_rate: requireSamplingRate(raw, field),
        count: requireCount(raw, field),
      };
    default:
      throw new PrivacyInputError(`${field}.type`, `must be one of ${EVENT_TYPES.join(', ')} (got ${describe(raw.type)})`);
  }
}

/**
 * Validates an untrusted JSON value as a list of privacy events. Throws PrivacyInputError naming the bad
 * field (`events[3].sampling_rate: ...`). An empty list is valid (nothing spent yet).
 */
export function parsePrivacyEvents(input: unknown): PrivacyEvent[] {
  if (!Array.isArray(input)) throw new PrivacyInputError('events', `must be an array (got ${describe(input)})`);
  if (input.length > 100_000) throw new PrivacyInputError('events', 'more than 100000 events');
  return input.map((e, i) => parsePrivacyEvent(e, `events[${i}]`));
}

/** Re-validates events passed through the typed API (callers may still hand us NaN or a stray q). */
export function checkEvents(events: readonly PrivacyEvent[]): PrivacyEvent[] {
  return parsePrivacyEvents(events as unknown);
}

export function checkDelta(delta: unknown, field = 'delta'): number {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || !(delta > 0) || !(delta < 1)) {
    throw new PrivacyInputError(field, `must be a number in (0, 1) (got ${describe(delta)})`);
  }
  return delta;
}

export function checkEpsilon(eps: unknown, field = 'epsilon'): number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new PrivacyInputError(field, `must be a finite number >= 0 (got ${describe(eps)})`);
  }
  return eps;
}

export function checkAccountant(a: unknown, field = 'accountant'): AccountantName {
  if (a === undefined) return 'auto';
  if (a === 'exact' || a === 'rdp' || a === 'pld' || a === 'auto') return a;
  throw new PrivacyInputError(field, `must be one of exact, rdp, pld, auto (got ${describe(a)})`);
}

/**
 * Normal form used internally: a Poisson-subsampled Gaussian with q = 1 is exactly a Gaussian.
 */
export function normalizeEvents(events: readonly PrivacyEvent[]): PrivacyEvent[] {
  return events.map((e) =>
    e.type === 'poisson_subsampled_gaussian' && e.sampling_rate === 1
      ? { type: 'gaussian', noise_multiplier: e.noise_multiplier, count: e.count }
      : e,
  );
}
