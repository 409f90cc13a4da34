import type { NextFunction, Request, Response } from 'express';

/** The JSON body limit: a classify request holds up to SERVING_MAX_IMAGES images of base64. */
export const JSON_BODY_LIMIT = '64mb';

/**
 * A body the JSON parser refused, answered as GraphQL answers its own malformed requests: status 400 (413
 * when it is over JSON_BODY_LIMIT) and `{ errors: [{ message, extensions: { code } }] }` with the codes of
 * common/graphql/format-error.ts and `Cache-Control: no-store` like every GraphQL answer, instead of the
 * framework's generic error object. Other errors go on.
 */
export function graphqlBodyErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const type = (err as { type?: unknown } | null)?.type;
  if (type !== 'entity.parse.failed' && type !== 'entity.too.large') return next(err);
  const tooLarge = type === 'entity.too.large';
  const message = tooLarge ? `the request body is larger than ${JSON_BODY_LIMIT}` : `the request body is not valid JSON: ${(err as Error).message}`;
  res.setHeader('cache-control', 'no-store');
  res.status(tooLarge ? 413 : 400).json({ errors: [{ message, extensions: { code: tooLarge ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST' } }] });
}
