/** Serving errors with stable codes (mapped to GraphQL extensions.code by src/common/graphql/format-error.ts). */
import { DomainError } from '../common/errors/domain-errors';

/** No model matches the reference (id, name, name@version or name@alias). */
export class ModelNotFoundError extends DomainError {
  readonly code = 'MODEL_NOT_FOUND';
}

/** The model exists but is not deployed (deploy it first, or address a deployed version / alias). */
export class ModelNotDeployedError extends DomainError {
  readonly code = 'MODEL_NOT_DEPLOYED';
}

/** The model is deployed but this replica could not load or warm it up. */
export class ModelNotReadyError extends DomainError {
  readonly code = 'MODEL_NOT_READY';
}

/** The backbone's queue is full: retry later (with backoff) or on another replica. */
export class OverloadedError extends DomainError {
  readonly code = 'OVERLOADED';
}

/** The request was not answered within the per-request timeout. */
export class InferenceTimeoutError extends DomainError {
  readonly code = 'TIMEOUT';
}

/** The backbone or head failed on a well-formed request (a server-side problem, logged). */
export class InferenceFailedError extends DomainError {
  readonly code = 'INFERENCE_FAILED';
}
