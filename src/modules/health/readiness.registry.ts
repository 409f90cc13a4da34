import { Injectable } from '@nestjs/common';

export interface ReadinessReport {
  ready: boolean;
  /** Extra information shown under the component's name in /health/ready (e.g. the tensor engine in use). */
  details?: unknown;
}

/** Components (tensor engine, deployed models, ...) register a check that /health/ready includes. */
@Injectable()
export class ReadinessRegistry {
  private readonly checks = new Map<string, () => ReadinessReport | Promise<ReadinessReport>>();

  register(name: string, check: () => ReadinessReport | Promise<ReadinessReport>): void {
    this.checks.set(name, check);
  }

  async report(): Promise<Record<string, ReadinessReport>> {
    const out: Record<string, ReadinessReport> = {};
    for (const [name, check] of this.checks) {
      try {
        out[name] = await check();
      } catch (err) {
        out[name] = { ready: false, details: (err as Error).message };
      }
    }
    return out;
  }
}
