/**
 * Budget metrics for Prometheus: per dataset epsilon limit / spent / reserved / remaining (read at scrape
 * time from each dataset's latest ledger entry, which records the state after it: one indexed query, no
 * accounting), and ledger operations by kind and outcome.
 */
import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { metrics } from '@opentelemetry/api';
import { DataSource } from 'typeorm';

const meter = metrics.getMeter('privatune.ledger');

/** Counts ledger operations: kind = reservation|commit|abort|external_release|budget_change, outcome = ok|insufficient_budget|invalid|error. */
export const ledgerOperations = meter.createCounter('privatune_ledger_operations', {
  description: 'Privacy ledger operations by kind and outcome',
});

@Injectable()
export class LedgerMetrics implements OnModuleInit {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  onModuleInit(): void {
    const gauges = {
      limit: meter.createObservableGauge('privatune_dataset_epsilon_limit', { description: 'Epsilon limit of each dataset' }),
      spent: meter.createObservableGauge('privatune_dataset_epsilon_spent', { description: 'Composed epsilon of committed releases' }),
      reserved: meter.createObservableGauge('privatune_dataset_epsilon_reserved', { description: 'Epsilon held by open reservations' }),
      remaining: meter.createObservableGauge('privatune_dataset_epsilon_remaining', { description: 'Epsilon left to spend' }),
    };
    meter.addBatchObservableCallback(async (observer) => {
      const rows: { id: string; name: string; delta: number; epsilon_limit: number; epsilon_spent: number; epsilon_reserved: number }[] = await this.db.query(`
        SELECT DISTINCT ON (e.dataset_id) d.id, d.name, d.delta, e.epsilon_limit, e.epsilon_spent, e.epsilon_reserved
        FROM ledger_entries e JOIN datasets d ON d.id = e.dataset_id
        ORDER BY e.dataset_id, e.seq DESC`);
      for (const r of rows) {
        const attrs = { dataset_id: r.id, dataset: r.name, delta: String(r.delta) };
        observer.observe(gauges.limit, r.epsilon_limit, attrs);
        observer.observe(gauges.spent, r.epsilon_spent, attrs);
        observer.observe(gauges.reserved, r.epsilon_reserved, attrs);
        observer.observe(gauges.remaining, Math.max(0, r.epsilon_limit - r.epsilon_spent - r.epsilon_reserved), attrs);
      }
    }, Object.values(gauges));
  }
}

