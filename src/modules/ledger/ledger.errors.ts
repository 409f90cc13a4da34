import { DomainError } from '../../common/errors/domain-errors';

/** The request would take the composed epsilon over the dataset's limit. Nothing was written. */
export class InsufficientBudgetError extends DomainError {
  readonly code = 'INSUFFICIENT_BUDGET';
  constructor(
    readonly datasetId: string,
    /** Epsilon of the requested releases on their own, at the dataset's delta. */
    readonly requestedEpsilon: number,
    /** Limit minus the composed epsilon of everything already spent or reserved. */
    readonly remainingEpsilon: number,
    readonly epsilonLimit: number,
    /** The composed epsilon the dataset would reach with the request. */
    readonly epsilonAfter: number,
  ) {
    super(
      `Insufficient privacy budget on dataset ${datasetId}: the request would bring epsilon to ${epsilonAfter.toFixed(4)} ` +
        `over the limit ${epsilonLimit} (request alone ${requestedEpsilon.toFixed(4)}, remaining ${remainingEpsilon.toFixed(4)})`,
      { datasetId, requestedEpsilon, remainingEpsilon, epsilonLimit, epsilonAfter },
    );
  }
}
