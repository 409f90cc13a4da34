import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { traceIncoming, withIncoming } from '../../telemetry/http-server';
import { requestContext, type RequestContext } from '../logging/request-context';

const VALID_ID = /^[A-Za-z0-9._-]{1,100}$/;
const logger = new Logger('HTTP');

/**
 * Every HTTP request's entry. Gives it an id (the caller's X-Request-Id when well-formed), echoed in the
 * response and carried by every log line written while serving it; a trace span and a duration metric
 * (telemetry/http-server.ts; not for probes and scrapes); and, when the response is sent, one access line
 * (never headers or bodies, so no API key reaches the logs).
 */
export function requestMiddleware(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.header('x-request-id');
  const requestId = incoming && VALID_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  const started = process.hrtime.bigint();
  const ctx: RequestContext = { requestId };
  const path = req.originalUrl.split('?')[0];
  // Probes and scrapes would drown everything else: no span, no metric, access lines at debug level.
  const routine = path.startsWith('/health') || path === '/metrics';
  const traced = routine ? undefined : traceIncoming(req, path);
  res.on('finish', () => {
    traced?.end(res);
    const log = () =>
      requestContext.run(ctx, () => {
        const entry = {
          msg: 'request',
          method: req.method,
          path,
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
          ...(ctx.caller ? { caller: ctx.caller } : {}),
        };
        if (routine) logger.debug(entry);
        else logger.log(entry);
      });
    // The access line carries the request's trace id too.
    if (traced) withIncoming(traced, log);
    else log();
  });
  if (!traced) {
    requestContext.run(ctx, next);
    return;
  }
  // A client that goes away before its answer still ends the span and counts.
  res.on('close', () => traced.end(res));
  withIncoming(traced, () => requestContext.run(ctx, next));
}
