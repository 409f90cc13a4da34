import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HEAP_GROWING_PERCENT } from '../../src/common/heap-growth';
import { MAIN } from '../support/server';

const HEAP_GROWTH = join(__dirname, '..', '..', 'src', 'common', 'heap-growth.js');

/**
 * The growing factors V8 applied at each full collection of a child process, from --trace-gc-verbose's
 * "[HeapController] Limit: old size: X KB, new limit: Y KB (factor)" lines.
 */
function growingFactors(args: string[], env: NodeJS.ProcessEnv = process.env): { factors: number[]; status: number | null } {
  const child = spawnSync(process.execPath, ['--trace-gc-verbose', '--expose-gc', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  const factors = [...child.stdout.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \(([\d.]+)\)/g)].map((m) => Number(m[1]));
  return { factors, status: child.status };
}

// Some live heap, then full collections.
const WORKLOAD = 'const live = []; for (let i = 0; i < 300000; i++) live.push({ i }); gc(); gc();';

describe("the server's heap growth", () => {
  it('grows the old generation by a fixed factor once set', () => {
    const set = growingFactors(['-e', `require(${JSON.stringify(HEAP_GROWTH)}).setHeapGrowth(); ${WORKLOAD}`]);
    assert.ok(set.factors.length >= 2, 'full collections were traced');
    for (const f of set.factors) assert.equal(f, 1 + HEAP_GROWING_PERCENT / 100);
    // V8's own choice differs (up to 4 for a heap this cheap to collect), so the test can tell them apart.
    const unset = growingFactors(['-e', WORKLOAD]);
    assert.ok(unset.factors.length >= 2);
    assert.ok(unset.factors.some((f) => f !== 1 + HEAP_GROWING_PERCENT / 100), `V8's own factors: ${unset.factors.join(', ')}`);
  });

  it('is set by the server before anything else (even a start that fails on its configuration)', () => {
    // A bad PORT makes main exit at once (78, EX_CONFIG); a full collection on the way out shows the factor.
    const run = growingFactors(['-e', `process.on('exit', () => gc()); require(${JSON.stringify(MAIN)});`], { ...process.env, PORT: 'not-a-port' });
    assert.equal(run.status, 78);
    assert.ok(run.factors.length >= 1, 'the exit collection was traced');
    assert.equal(run.factors[run.factors.length - 1], 1 + HEAP_GROWING_PERCENT / 100);
  });
});
