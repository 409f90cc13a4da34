/**
 * Front door of the accountants: validation, `auto` resolution, finiteness guarantees.
 */
import { PrivacyInputError } from './errors';
import {
  checkAccountant,
  checkDelta,
  checkEpsilon,
  checkEvents,
  normalizeEvents,
  type AccountantName,
  type ConcreteAccountant,
  type PrivacyEvent,
} from './events';
import { exactDelta, exactEpsilon, isExactApplicable, singleReleaseEpsilon } from './exact';
import { pldDelta, pldEpsilon } from './pld';
import { rdpDelta, rdpEpsilon, type RdpOrdersOption } from './rdp';

export interface AccountingOptions {
  /** PLD value discretisation interval (default 1e-4). Smaller is tighter and slower. */
  pldDiscretization?: number;
  /** RDP orders: dp_accounting's defaults (default), only its integer orders, or an explicit list. */
  rdpOrders?: RdpOrdersOption;
}

export interface EpsilonResult {
  epsilon: number;
  delta: number;
  accountant: ConcreteAccountant;
}

export interface DeltaResult {
  delta: number;
  epsilon: number;
  accountant: ConcreteAccountant;
}

function checkOptions(options: AccountingOptions | undefined): AccountingOptions {
  const o = options ?? {};
  if (o.pldDiscretization !== undefined) {
    const h = o.pldDiscretization;
    if (typeof h !== 'number' || !Number.isFinite(h) || !(h > 0) || h > 1) {
      throw new PrivacyInputError('pldDiscretization', `must be a number in (0, 1] (got ${String(h)})`);
    }
  }
  if (o.rdpOrders !== undefined && o.rdpOrders !== 'default' && o.rdpOrders !== 'integer') {
    const list = o.rdpOrders;
    if (!Array.isArray(list) || list.length === 0 || list.some((a) => typeof a !== 'number' || !(a > 1) || !Number.isFinite(a))) {
      throw new PrivacyInputError('rdpOrders', 'must be "default", "integer" or a non-empty list of finite orders > 1');
    }
  }
  return o;
}

/** `auto` = exact when it applies, else pld. */
export function resolveAccountant(events: readonly PrivacyEvent[], accountant: AccountantName): ConcreteAccountant {
  if (accountant !== 'auto') return accountant;
  return isExactApplicable(events) ? 'exact' : 'pld';
}

function finite(value: number, what: string): number {
  if (!Number.isFinite(value)) {
    throw new PrivacyInputError('events', `${what} is not finite for these events (noise_multiplier too small?)`);
  }
  return value;
}

/** Epsilon after composing `events`, at the given delta. */
export function computeEpsilon(
  events: PrivacyEvent[],
  delta: number,
  accountant: AccountantName = 'auto',
  options?: AccountingOptions,
): EpsilonResult {
  const evs = normalizeEvents(checkEvents(events));
  checkDelta(delta);
  const o = checkOptions(options);
  const acc = resolveAccountant(evs, checkAccountant(accountant));
  let eps: number;
  switch (acc) {
    case 'exact':
      eps = exactEpsilon(evs, delta);
      break;
    case 'rdp':
      eps = rdpEpsilon(evs, delta, o.rdpOrders).value;
      break;
    case 'pld':
      eps = pldEpsilon(evs, delta, o.pldDiscretization);
      break;
  }
  return { epsilon: finite(eps, 'epsilon'), delta, accountant: acc };
}

/** Delta after composing `events`, at the given epsilon. */
export function computeDelta(
  events: PrivacyEvent[],
  epsilon: number,
  accountant: AccountantName = 'auto',
  options?: AccountingOptions,
): DeltaResult {
  const evs = normalizeEvents(checkEvents(events));
  checkEpsilon(epsilon);
  const o = checkOptions(options);
  const acc = resolveAccountant(evs, checkAccountant(accountant));
  let delta: number;
  switch (acc) {
    case 'exact':
      delta = exactDelta(evs, epsilon);
      break;
    case 'rdp':
      delta = rdpDelta(evs, epsilon, o.rdpOrders).value;
      break;
    case 'pld':
      delta = pldDelta(evs, epsilon, o.pldDiscretization);
      break;
  }
  if (!Number.isFinite(delta)) delta = 1;
  return { delta: Math.min(1, Math.max(0, delta)), epsilon, accountant: acc };
}

/**
 * "Naive composition" comparison column: sum over all releases (count of each event) of the tight epsilon
 * of that ONE release at the same delta (analytic Gaussian / Laplace curve, exact curve of one subsampled
 * Gaussian). By basic composition the list is then (naiveSum, totalCount * delta)-DP, i.e. this number
 * holds at a much larger delta than `delta`: it is NOT a guarantee at `delta`, only a baseline showing
 * what tight composition accounting saves.
 */
export function naiveEpsilonSum(events: PrivacyEvent[], delta: number): number {
  const evs = normalizeEvents(checkEvents(events));
  checkDelta(delta);
  let sum = 0;
  for (const e of evs) sum += e.count * singleReleaseEpsilon(e, delta);
  return finite(sum, 'naive epsilon sum');
}
