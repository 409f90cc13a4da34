/**
 * Depth and cost limits, checked once per operation after it is resolved (so variables are known).
 * Cost: every field costs 1; a list field with a `first` argument multiplies its subtree by `first`
 * (a Relay connection page), so `datasets(first: 100) { edges { node { ledger(first: 100) ... } } }`
 * is priced as what it really asks for.
 *
 * Both are computed once per parsed document (Apollo hands repeated queries the same cached document):
 * the depth per operation, the cost per operation and values of the variables it can depend on. Pricing
 * coerces every variable, so before this cache a classify request's image strings were coerced twice.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { DocumentNode, FragmentDefinitionNode, GraphQLError, Kind, OperationDefinitionNode, SelectionSetNode, visit } from 'graphql';
import { ComplexityEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';

export function queryDepth(selectionSet: SelectionSetNode | undefined, fragments: Record<string, FragmentDefinitionNode>, seen = new Set<string>()): number {
  if (!selectionSet) return 0;
  let max = 0;
  for (const sel of selectionSet.selections) {
    if (sel.kind === Kind.FIELD) {
      if (sel.name.value.startsWith('__')) continue; // introspection meta fields
      max = Math.max(max, 1 + queryDepth(sel.selectionSet, fragments, seen));
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      max = Math.max(max, queryDepth(sel.selectionSet, fragments, seen));
    } else {
      const name = sel.name.value;
      if (seen.has(name) || !fragments[name]) continue; // cycles are rejected by validation anyway
      max = Math.max(max, queryDepth(fragments[name].selectionSet, fragments, new Set(seen).add(name)));
    }
  }
  return max;
}

const pageEstimator: ComplexityEstimator = ({ args, childComplexity }) => {
  const first = typeof args.first === 'number' && args.first > 0 ? args.first : undefined;
  return first !== undefined ? 1 + first * childComplexity : undefined;
};

/**
 * The variables a document's cost can depend on: those inside a `first` argument (pageEstimator) or a
 * directive (@include / @skip decide which fields count). Every other variable leaves the cost as it is.
 */
export function costVariables(document: DocumentNode): string[] {
  const names = new Set<string>();
  const collect = (node: Parameters<typeof visit>[0]) =>
    visit(node, {
      Variable(v) {
        names.add(v.name.value);
      },
    });
  visit(document, {
    Field(field) {
      for (const arg of field.arguments ?? []) if (arg.name.value === 'first') collect(arg.value);
    },
    Directive(directive) {
      collect(directive);
    },
  });
  return [...names].sort();
}

interface DocumentLimits {
  costVariables: string[];
  /** Cost by operation name and the values of costVariables. */
  costs: Map<string, number>;
}

/** Query costs remembered per parsed document (held weakly: a document evicted from Apollo's cache goes too). */
export class QueryCostCache {
  private readonly documents = new WeakMap<DocumentNode, DocumentLimits>();

  /** Most remembered costs per document (e.g. one per page size a client asks for). */
  constructor(private readonly perDocument = 64) {}

  /** The cost, from `compute` only the first time for this operation and these cost-relevant variable values. */
  cost(document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown>, compute: () => number): number {
    let entry = this.documents.get(document);
    if (!entry) {
      entry = { costVariables: costVariables(document), costs: new Map() };
      this.documents.set(document, entry);
    }
    const key = JSON.stringify([operationName ?? null, ...entry.costVariables.map((v) => variables[v] ?? null)]);
    const known = entry.costs.get(key);
    if (known !== undefined) return known;
    const cost = compute(); // throws on invalid variables: nothing is remembered
    if (entry.costs.size >= this.perDocument) entry.costs.clear();
    entry.costs.set(key, cost);
    return cost;
  }
}

export function queryLimitsPlugin(limits: { maxDepth: number; maxCost: number }): ApolloServerPlugin {
  const depths = new WeakMap<OperationDefinitionNode, number>();
  const costs = new QueryCostCache();
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request, schema }) {
          const op = operation as OperationDefinitionNode;
          let depth = depths.get(op);
          if (depth === undefined) {
            const fragments: Record<string, FragmentDefinitionNode> = {};
            for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments[def.name.value] = def;
            depth = queryDepth(op.selectionSet, fragments);
            depths.set(op, depth);
          }
          if (depth > limits.maxDepth) {
            throw new GraphQLError(`Query depth ${depth} exceeds the limit of ${limits.maxDepth}`, {
              extensions: { code: 'QUERY_TOO_DEEP', depth, maxDepth: limits.maxDepth, http: { status: 400 } },
            });
          }
          const variables = request.variables ?? {};
          let cost: number;
          try {
            cost = costs.cost(document, request.operationName, variables, () =>
              getComplexity({
                schema,
                query: document,
                operationName: request.operationName ?? undefined,
                variables,
                estimators: [pageEstimator, simpleEstimator({ defaultComplexity: 1 })],
              }),
            );
          } catch {
            return; // invalid variables: execution rejects them next, with BAD_USER_INPUT
          }
          if (cost > limits.maxCost) {
            throw new GraphQLError(`Query cost ${cost} exceeds the limit of ${limits.maxCost}`, {
              extensions: { code: 'QUERY_TOO_COSTLY', cost, maxCost: limits.maxCost, http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}
