import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { costVariables, QueryCostCache } from '../../src/common/graphql/query-limits.plugin';

describe('query cost cache', () => {
  it('finds the variables a cost depends on: first arguments and directives, not other arguments', () => {
    const doc = parse(`query Q($n: Int, $m: Int, $show: Boolean!, $input: ClassifyInput!, $after: String) {
      classify(input: $input) { modelId }
      a(first: $n, after: $after) { edges { node { b(first: $m) { id } } } }
      c @include(if: $show) { id }
    }`);
    assert.deepEqual(costVariables(doc), ['m', 'n', 'show']);
    assert.deepEqual(costVariables(parse('query($i: ClassifyInput!) { classify(input: $i) { modelId } }')), []);
  });

  it('computes a cost once per document, operation and cost-relevant variable values', () => {
    const cache = new QueryCostCache();
    const doc = parse('query Page($n: Int, $after: String) { a(first: $n, after: $after) { id } } query Other { b }');
    let computed = 0;
    const cost = (op: string, vars: Record<string, unknown>, value: number) =>
      cache.cost(doc, op, vars, () => {
        computed++;
        return value;
      });
    assert.equal(cost('Page', { n: 5, after: 'x' }, 6), 6);
    assert.equal(cost('Page', { n: 5, after: 'y' }, 999), 6, 'a cursor does not change the cost: remembered');
    assert.equal(computed, 1);
    assert.equal(cost('Page', { n: 50 }, 51), 51, 'another page size is priced anew');
    assert.equal(cost('Other', {}, 1), 1, 'another operation of the same document is priced anew');
    assert.equal(computed, 3);
    // Same text, another parse: another document (the cache is keyed by the parsed document, as Apollo caches it).
    cache.cost(parse('query Page($n: Int, $after: String) { a(first: $n, after: $after) { id } } query Other { b }'), 'Page', { n: 5 }, () => ++computed);
    assert.equal(computed, 4);
  });

  it('remembers nothing when pricing fails, and stays bounded per document', () => {
    const cache = new QueryCostCache(2);
    const doc = parse('query($n: Int) { a(first: $n) { id } }');
    assert.throws(() => cache.cost(doc, null, { n: 'x' }, () => { throw new Error('invalid variables'); }), /invalid variables/);
    assert.equal(cache.cost(doc, null, { n: 'x' }, () => 7), 7, 'retried after a failure');
    let computed = 0;
    for (const n of [1, 2, 3, 1]) cache.cost(doc, null, { n }, () => ++computed);
    assert.equal(computed, 4, 'n = 1 was forgotten when the third value filled the bound');
  });
});
