import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeEpsilon, computeDelta } from '../../src/privacy';
import { rdpEpsilon } from '../../src/privacy/rdp';
import { loadVectors, relErr } from './fixtures';

const vectors = loadVectors();

test('fixture file has cases', () => {
  assert.ok(vectors.length >= 10);
});

for (const c of vectors) {
  test(`vectors: ${c.id}`, async (t) => {
    const exact = c.expected.exact_epsilon;
    if (exact !== undefined) {
      await t.test('exact within 1e-9 relative', () => {
        const r = computeEpsilon(c.events, c.delta, 'exact');
        assert.equal(r.accountant, 'exact');
        assert.ok(relErr(r.epsilon, exact) <= 1e-9, `exact ${r.epsilon} vs ${exact}`);
        // auto picks exact
        assert.equal(computeEpsilon(c.events, c.delta).accountant, 'exact');
        // round trip through delta(eps)
        const d = computeDelta(c.events, r.epsilon, 'exact').delta;
        assert.ok(relErr(d, c.delta) < 1e-7, `delta round trip ${d}`);
      });
    }
    await t.test('rdp within 0.5% (dp_accounting default orders; we match to 1e-6)', () => {
      const r = computeEpsilon(c.events, c.delta, 'rdp');
      assert.ok(relErr(r.epsilon, c.expected.rdp_epsilon) <= 1e-6, `rdp ${r.epsilon} vs ${c.expected.rdp_epsilon}`);
      const withOrder = rdpEpsilon(c.events, c.delta);
      assert.equal(withOrder.order, c.diagnostics.rdp_optimal_order);
    });
    await t.test('rdp integer orders within 1e-6', () => {
      const r = computeEpsilon(c.events, c.delta, 'rdp', { rdpOrders: 'integer' });
      const want = c.diagnostics.rdp_epsilon_integer_orders;
      assert.ok(relErr(r.epsilon, want) <= 1e-6, `rdp/int ${r.epsilon} vs ${want}`);
    });
    await t.test('pld within 1e-3 and never below exact', () => {
      const r = computeEpsilon(c.events, c.delta, 'pld');
      assert.equal(r.accountant, 'pld');
      assert.ok(relErr(r.epsilon, c.expected.pld_epsilon) <= 1e-3, `pld ${r.epsilon} vs ${c.expected.pld_epsilon}`);
      if (exact !== undefined) assert.ok(r.epsilon >= exact, `pld ${r.epsilon} below exact ${exact}`);
    });
  });
}

test('pld at the 1e-3 grid matches diagnostics.pld_epsilon_vdi_1e-3 within 1e-3', () => {
  for (const c of vectors.slice(0, 8)) {
    const want = c.diagnostics['pld_epsilon_vdi_1e-3'] as number;
    const r = computeEpsilon(c.events, c.delta, 'pld', { pldDiscretization: 1e-3 });
    assert.ok(relErr(r.epsilon, want) <= 1e-3, `${c.id}: ${r.epsilon} vs ${want}`);
  }
});
