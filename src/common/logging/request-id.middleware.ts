import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { requestContext } from './request-context';

const VALID_ID = /^[A-Za-z0-9._-]{1,100}$/;
const logger = new Logger('HTTP');

/**
 * Gives every HTTP request an id (the caller's X-Request-Id when well-formed), echoed in the response and
 * carried by every log line written while serving it; logs one access line when the response is sent
 * (never headers or bodies, so no API key reaches the logs).
 */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.header('x-request-id');
  const requestId = incoming && VALID_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  const started = process.hrtime.bigint();
  const ctx = { requestId } as { requestId: string; caller?: string };
  const path = req.originalUrl.split('?')[0];
  res.on('finish', () => {
    requestContext.run(ctx, () => {
      const entry = {
        msg: 'request',
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        ...(ctx.caller ? { caller: ctx.caller } : {}),
      };
      // Probes and scrapes would drown everything else at info level.
      if (path.startsWith('/health') || path === '/metrics') logger.debug(entry);
      else logger.log(entry);
    });
  });
  requestContext.run(ctx, next);
}
