/**
 * RDP accountant: RDP adds over composition; conversion to (eps, delta) by the improved bound of
 * Balle et al. 2020 / Canonne-Kamath-Steinke 2020 (Prop. 12), minimised over a fixed list of orders:
 *   delta = exp((alpha-1)(rho - eps + log(1 - 1/alpha))) / alpha
 *   eps   = rho + log(1 - 1/alpha) - (log delta + log alpha)/(alpha - 1)
 * plus the KL bound delta <= sqrt(1 - e^{-rho}) (Bretagnolle-Huber), which gives eps = 0 when it applies.
 */
import type { PrivacyEvent } from './events';
import { mechanismOf } from './mechanisms';

/** dp_accounting's default orders: 1.1, 1.2, ..., 10.9, 11, ..., 63, 128, 256, 512, 1024. */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 53 }, (_, k) => 11 + k),
  128,
  256,
  512,
  1024,
]);

/** The integer orders of DEFAULT_RDP_ORDERS (2..63, 128, 256, 512, 1024): exact values, no series. */
export const INTEGER_RDP_ORDERS: readonly number[] = Object.freeze(DEFAULT_RDP_ORDERS.filter((a) => Number.isInteger(a)));

export type RdpOrdersOption = 'default' | 'integer' | readonly number[];

export function resolveOrders(option: RdpOrdersOption | undefined): readonly number[] {
  if (option === undefined || option === 'default') return DEFAULT_RDP_ORDERS;
  if (option === 'integer') return INTEGER_RDP_ORDERS;
  return option;
}

/** Total RDP of the composed events at each order (Infinity marks an excluded order). */
export function composeRdp(events: readonly PrivacyEvent[], orders: readonly number[]): Float64Array {
  const total = new Float64Array(orders.length);
  for (const e of events) {
    const spec = mechanismOf(e);
    for (let k = 0; k < orders.length; k++) total[k] += e.count * spec.rdp(e, orders[k]);
  }
  return total;
}

export interface RdpResult {
  value: number;
  order: number;
}

/** Smallest epsilon over orders for the given delta (>= 0). Infinity if no order gives a finite bound. */
export function rdpToEpsilon(orders: readonly number[], rdp: Float64Array, delta: number): RdpResult {
  let best = Infinity;
  let bestOrder = NaN;
  const logDelta = Math.log(delta);
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (!Number.isFinite(r) || !(a > 1)) continue;
    let eps: number;
    if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else eps = r + Math.log1p(-1 / a) - (logDelta + Math.log(a)) / (a - 1);
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { value: Math.max(0, best), order: bestOrder };
}

/** Smallest delta over orders for the given epsilon. */
export function rdpToDelta(orders: readonly number[], rdp: Float64Array, eps: number): RdpResult {
  let bestLog = Infinity;
  let bestOrder = NaN;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (!Number.isFinite(r) || !(a > 1)) continue;
    let logDelta = r === 0 ? -Infinity : 0.5 * Math.log(-Math.expm1(-r));
    const bound = (a - 1) * (r - eps + Math.log1p(-1 / a)) - Math.log(a);
    if (bound < logDelta) logDelta = bound;
    if (logDelta < bestLog) {
      bestLog = logDelta;
      bestOrder = a;
    }
  }
  return { value: Math.min(1, Math.exp(bestLog)), order: bestOrder };
}

export function rdpEpsilon(events: readonly PrivacyEvent[], delta: number, orders?: RdpOrdersOption): RdpResult {
  const ords = resolveOrders(orders);
  return rdpToEpsilon(ords, composeRdp(events, ords), delta);
}

export function rdpDelta(events: readonly PrivacyEvent[], eps: number, orders?: RdpOrdersOption): RdpResult {
  const ords = resolveOrders(orders);
  return rdpToDelta(ords, composeRdp(events, ords), eps);
}
