import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.decorators';
import { migrationsUpToDate } from '../database/data-source';
import { ReadinessRegistry } from './readiness.registry';

@Public()
@Controller('health')
export class HealthController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly readiness: ReadinessRegistry,
  ) {}

  /** The process is up. */
  @Get('live')
  @HttpCode(HttpStatus.OK)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready to serve: the database answers, every migration is applied, and every registered component is ready. */
  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const checks: Record<string, unknown> = {};
    let ok = true;
    try {
      await this.db.query('SELECT 1');
      const migrated = await migrationsUpToDate(this.db);
      checks.database = migrated ? 'ok' : 'migrations pending';
      ok &&= migrated;
    } catch (err) {
      checks.database = `unavailable: ${(err as Error).message}`;
      ok = false;
    }
    for (const [name, report] of Object.entries(await this.readiness.report())) {
      checks[name] = report.details ?? (report.ready ? 'ok' : 'not ready');
      ok &&= report.ready;
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
