/**
 * Domain errors carry a stable code. They are mapped to GraphQL `extensions.code` in one place
 * (src/common/graphql/format-error.ts); expected failures that a client should branch on are returned as
 * typed members of payload unions instead (see each feature's dto).
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UnauthenticatedError extends DomainError {
  readonly code = 'UNAUTHENTICATED';
}

export class ForbiddenError extends DomainError {
  readonly code = 'FORBIDDEN';
}

export class BadInputError extends DomainError {
  readonly code = 'BAD_USER_INPUT';
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
}

export class ConflictError extends DomainError {
  readonly code = 'CONFLICT';
}

/** A request that was well-formed but is not allowed in the current state (e.g. aborting a committed reservation). */
export class PreconditionFailedError extends DomainError {
  readonly code = 'FAILED_PRECONDITION';
}
