/**
 * Structured JSON logs, one object per line on stdout, with the request id of the current request.
 * Secrets never reach this logger: API keys are only ever handled as hashes, and database URLs are
 * redacted before they are logged.
 */
import { LoggerService } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import type { LogLevel } from '../../config/config';
import { requestContext } from './request-context';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class JsonLogger implements LoggerService {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stdout.write(line + '\n'),
  ) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.emit('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.emit('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.emit('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.emit('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.emit('debug', message, rest);
  }

  private emit(level: LogLevel, message: unknown, rest: unknown[]): void {
    if (ORDER[level] < ORDER[this.level]) return;
    // Nest passes (message, context) or (message, stack, context) for errors.
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level };
    if (context) entry.context = context;
    const ctx = requestContext.getStore();
    if (ctx) entry.requestId = ctx.requestId;
    const span = trace.getActiveSpan()?.spanContext();
    if (span) entry.traceId = span.traceId;
    if (message instanceof Error) {
      entry.msg = message.message;
      entry.error = { name: message.name, stack: message.stack };
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(entry, message);
    } else {
      entry.msg = String(message);
    }
    const stack = rest.find((r) => typeof r === 'string');
    if (level === 'error' && stack) entry.stack = stack;
    this.write(JSON.stringify(entry));
  }
}
