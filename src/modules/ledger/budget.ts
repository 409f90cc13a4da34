/**
 * Budget arithmetic over privacy events, with the platform's accountant choice (`auto`: exact when the
 * events are all Gaussian, else PLD). Pure: no database.
 */
import { computeEpsilon, naiveEpsilonSum, PrivacyEvent } from '../../privacy';

/** Identical mechanisms merged into one event with the summed count: same guarantee, cheaper to account. */
export function compactEvents(events: PrivacyEvent[]): PrivacyEvent[] {
  const merged = new Map<string, PrivacyEvent>();
  for (const e of events) {
    const key = `${e.type}|${e.noise_multiplier}|${'sampling_rate' in e ? e.sampling_rate : ''}`;
    const found = merged.get(key);
    if (found) found.count += e.count;
    else merged.set(key, { ...e });
  }
  return [...merged.values()];
}

export interface ComposedEpsilon {
  epsilon: number;
  accountant: string;
}

export function composedEpsilon(events: PrivacyEvent[], delta: number): ComposedEpsilon {
  if (events.length === 0) return { epsilon: 0, accountant: 'none' };
  const r = computeEpsilon(compactEvents(events), delta, 'auto');
  return { epsilon: r.epsilon, accountant: r.accountant };
}

export interface BudgetState {
  epsilonLimit: number;
  delta: number;
  /** Composed epsilon of committed releases. */
  epsilonSpent: number;
  /** What open reservations add on top of the spent epsilon (composed, not summed). */
  epsilonReserved: number;
  epsilonRemaining: number;
  accountant: string;
  naiveEpsilonSum: number;
}

export function budgetState(epsilonLimit: number, delta: number, committed: PrivacyEvent[], open: PrivacyEvent[]): BudgetState {
  const spent = composedEpsilon(committed, delta);
  const total = open.length ? composedEpsilon([...committed, ...open], delta) : spent;
  const all = [...committed, ...open];
  return {
    epsilonLimit,
    delta,
    epsilonSpent: spent.epsilon,
    epsilonReserved: Math.max(0, total.epsilon - spent.epsilon),
    epsilonRemaining: Math.max(0, epsilonLimit - total.epsilon),
    accountant: total.accountant,
    naiveEpsilonSum: all.length ? naiveEpsilonSum(all, delta) : 0,
  };
}
