/**
 * Accounting benchmark: median wall time per accountant on three workloads, against the reference timings
 * of Google's dp_accounting (Python + numpy) measured on the same kind of machine.
 *
 *   node dist/bench/accounting.bench.js [--repeats N] [--json]
 */
import { computeEpsilon, type AccountantName, type PrivacyEvent } from '../src/privacy';

interface Workload {
  name: string;
  events: PrivacyEvent[];
  delta: number;
  /** reference milliseconds (dp_accounting) per accountant */
  reference: Partial<Record<AccountantName, number>>;
}

const WORKLOADS: Workload[] = [
  {
    name: 'one Gaussian (sigma 1)',
    events: [{ type: 'gaussian', noise_multiplier: 1, count: 1 }],
    delta: 1e-5,
    reference: { rdp: 0.2, pld: 133 },
  },
  {
    name: '10,000 SGM steps (q 0.01, sigma 1)',
    events: [{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 0.01, count: 10_000 }],
    delta: 1e-5,
    reference: { rdp: 20, pld: 330 },
  },
  {
    name: 'mixture (G s10 + 100 SGM q0.05 s1.5 + Laplace b20)',
    events: [
      { type: 'gaussian', noise_multiplier: 10, count: 1 },
      { type: 'poisson_subsampled_gaussian', noise_multiplier: 1.5, sampling_rate: 0.05, count: 100 },
      { type: 'laplace', noise_multiplier: 20, count: 1 },
    ],
    delta: 1e-5,
    reference: { rdp: 25, pld: 230 },
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

function timeIt(fn: () => unknown, repeats: number): { median: number; result: unknown } {
  let result: unknown;
  for (let i = 0; i < 2; i++) result = fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    result = fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { median: median(times), result };
}

function fmt(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0);
}

function main(): void {
  const args = process.argv.slice(2);
  const ri = args.indexOf('--repeats');
  const repeatsArg = ri >= 0 ? Number(args[ri + 1]) : NaN;
  const json = args.includes('--json');
  const rows: { workload: string; accountant: string; epsilon: number; medianMs: number; referenceMs?: number; ratio?: number }[] = [];
  for (const w of WORKLOADS) {
    for (const acc of ['exact', 'rdp', 'pld'] as const) {
      if (acc === 'exact' && w.events.some((e) => e.type !== 'gaussian')) continue;
      const repeats = Number.isFinite(repeatsArg) ? repeatsArg : acc === 'pld' ? 9 : 51;
      const { median: ms, result } = timeIt(() => computeEpsilon(w.events, w.delta, acc), repeats);
      const ref = w.reference[acc];
      rows.push({
        workload: w.name,
        accountant: acc,
        epsilon: (result as { epsilon: number }).epsilon,
        medianMs: ms,
        referenceMs: ref,
        ratio: ref === undefined ? undefined : ms / ref,
      });
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  const header = '| workload | accountant | epsilon (delta 1e-5) | median ms | dp_accounting ms | ratio |';
  process.stdout.write(`${header}\n|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    process.stdout.write(
      `| ${r.workload} | ${r.accountant} | ${r.epsilon.toFixed(6)} | ${fmt(r.medianMs)} | ${r.referenceMs ?? '-'} | ${
        r.ratio === undefined ? '-' : r.ratio.toFixed(3)
      } |\n`,
    );
  }
  process.stdout.write(`\nnode ${process.version}, ${new Date().toISOString()}\n`);
}

main();
