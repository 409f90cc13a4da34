import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FragmentDefinitionNode, Kind, OperationDefinitionNode, parse } from 'graphql';
import { queryDepth } from '../../src/common/graphql/query-limits.plugin';

function depthOf(source: string): number {
  const doc = parse(source);
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d;
  const op = doc.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;
  return queryDepth(op.selectionSet, fragments);
}

describe('query depth', () => {
  it('counts field nesting', () => {
    assert.equal(depthOf('{ me { id } }'), 2);
    assert.equal(depthOf('{ a { b { c { d } } } e }'), 4);
  });
  it('follows named and inline fragments without counting them as levels', () => {
    assert.equal(depthOf('{ ...F } fragment F on Query { a { ... on A { b { c } } } }'), 3);
  });
  it('ignores introspection meta fields and survives fragment cycles', () => {
    assert.equal(depthOf('{ __typename me { id } }'), 2);
    assert.equal(depthOf('{ a { ...F } } fragment F on A { b { ...F } }'), 2);
  });
});
