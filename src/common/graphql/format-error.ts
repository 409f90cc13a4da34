/**
 * The one place where errors become GraphQL errors. Domain errors keep their stable code; GraphQL's own
 * parse/validation errors keep theirs; anything else is an INTERNAL_SERVER_ERROR whose message and stack
 * are hidden unless in development (the full error is logged with the request id).
 */
import { HttpException, LoggerService } from '@nestjs/common';
import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { PrivacyInputError } from '../../privacy';
import { DomainError } from '../errors/domain-errors';

const KEEP_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'BAD_REQUEST',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
]);

const HTTP_CODES: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'TOO_MANY_REQUESTS',
};

export function createErrorFormatter(opts: { development: boolean; logger: LoggerService }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };

    if (original instanceof DomainError) {
      return { ...base, message: original.message, extensions: { code: original.code, ...(original.details ?? {}) } };
    }
    if (original instanceof PrivacyInputError) {
      return { ...base, message: original.message, extensions: { code: 'BAD_USER_INPUT', reason: original.code } };
    }
    if (original instanceof HttpException) {
      const code = HTTP_CODES[original.getStatus()] ?? 'BAD_REQUEST';
      return { ...base, message: original.message, extensions: { code } };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && KEEP_CODES.has(code)) {
      const { stacktrace, ...extensions } = formatted.extensions ?? {};
      return { ...base, extensions: { ...extensions, ...(opts.development ? { stacktrace } : {}) } };
    }
    opts.logger.error(original instanceof Error ? original : new Error(String(formatted.message)), 'GraphQL');
    return {
      ...base,
      message: opts.development ? formatted.message : 'Internal server error',
      extensions: {
        code: 'INTERNAL_SERVER_ERROR',
        ...(opts.development && original instanceof Error ? { stacktrace: original.stack?.split('\n') } : {}),
      },
    };
  };
}
