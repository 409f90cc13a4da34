import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, entryHash, GENESIS_HASH, HashedEntryFields, verifyChain } from '../../src/modules/ledger/hash-chain';

function chain(n: number): (HashedEntryFields & { hash: string })[] {
  const out: (HashedEntryFields & { hash: string })[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const fields: HashedEntryFields = {
      id: `00000000-0000-4000-8000-00000000000${i}`,
      datasetId: 'd',
      seq: i,
      kind: 'EXTERNAL_RELEASE',
      reservationId: null,
      events: [{ type: 'gaussian', noise_multiplier: 1 + i / 10, count: 1 }],
      requesterId: null,
      requesterName: 'steward',
      purpose: `release ${i}`,
      details: { b: 1, a: [1, 2] },
      epsilonLimit: 8,
      epsilonSpent: i * 0.1,
      epsilonReserved: 0,
      accountant: 'exact',
      createdAt: new Date(Date.UTC(2026, 10, 28, 12, 0, i)),
      prevHash: prev,
    };
    const hash = entryHash(fields);
    out.push({ ...fields, hash });
    prev = hash;
  }
  return out;
}

describe('ledger hash chain', () => {
  it('encodes canonically: sorted keys, no whitespace, shortest numbers', () => {
    assert.equal(canonicalJson({ b: 1e-5, a: [true, null, 'x"y'], c: { z: 1, y: 2 } }), '{"a":[true,null,"x\\"y"],"b":0.00001,"c":{"y":2,"z":1}}');
    assert.throws(() => canonicalJson({ a: NaN }), /non-finite/);
  });

  it('verifies an intact chain', () => {
    assert.deepEqual(verifyChain(chain(5)), { valid: true, entries: 5, firstInvalidEntry: null, reason: null });
    assert.deepEqual(verifyChain([]), { valid: true, entries: 0, firstInvalidEntry: null, reason: null });
  });

  it('names the first changed entry, whatever field changed', () => {
    for (const mutate of [
      (e: any) => (e.purpose = 'other'),
      (e: any) => (e.events[0].noise_multiplier = 9),
      (e: any) => (e.epsilonSpent = 0),
      (e: any) => (e.createdAt = new Date(0)),
      (e: any) => (e.details.b = 2),
    ]) {
      const c = chain(5);
      mutate(c[2]);
      const v = verifyChain(c);
      assert.equal(v.valid, false);
      assert.equal(v.firstInvalidEntry, 3);
    }
  });

  it('detects removed, reordered and relinked entries', () => {
    const removed = chain(5);
    removed.splice(1, 1);
    assert.equal(verifyChain(removed).firstInvalidEntry, 3, "the entry found where entry 2 should be");
    const swapped = chain(4);
    [swapped[1], swapped[2]] = [swapped[2], swapped[1]];
    assert.equal(verifyChain(swapped).firstInvalidEntry, 3);
    // Rewriting an entry and re-hashing it still breaks the next link.
    const rehashed = chain(4);
    rehashed[1].purpose = 'forged';
    rehashed[1].hash = entryHash(rehashed[1]);
    assert.equal(verifyChain(rehashed).firstInvalidEntry, 3);
  });
});
