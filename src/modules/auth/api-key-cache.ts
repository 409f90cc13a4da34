/**
 * Authenticated API keys held in memory, so that a request does not cost a PostgreSQL round trip (the
 * lookup was the one query on every request: a tenth of the event loop and most of PostgreSQL's work
 * under classify load).
 *
 * Revocation still takes effect everywhere at once: a trigger announces every change to a key on the
 * `privatune_api_keys` channel (migration 1764300400000), each process LISTENs on a connection of its own
 * and drops the key when the notification arrives. The cache is trusted only while that connection is
 * listening: when it breaks, the cache is emptied and bypassed until the connection is back (what was
 * announced meanwhile is lost), so a process that could miss a revocation looks every key up. A lookup
 * that was in flight when a change arrived is not cached, since its row may predate the change: each
 * lookup carries the count of changes seen when it started (`begin`). A connection can also stall
 * without breaking (a network partition): the listener sends a heartbeat query every second, and the
 * cache is trusted only while one sent within the last 3 s has been answered (PostgreSQL delivers the
 * notifications of earlier commits before the answer). Entries expire after AUTH_KEY_CACHE_MS.
 */
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client, Notification } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { Principal } from './principal';

export const API_KEY_CHANNEL = 'privatune_api_keys';
const MAX_ENTRIES = 10_000;
const RETRY_MS = { first: 500, max: 30_000 };
const HEARTBEAT_MS = 1_000;
/** The cache is trusted while a heartbeat sent at most this long ago has been answered. */
const TRUST_MS = 3 * HEARTBEAT_MS;

const meter = metrics.getMeter('privatune.auth');
const lookups = meter.createCounter('privatune_auth_key_lookups', { description: 'API key checks by source: cache (memory) or database' });
const cacheActive = meter.createObservableGauge('privatune_auth_key_cache_active', {
  description: '1 while authenticated keys are cached (the change listener is connected and answering), else 0',
});

@Injectable()
export class ApiKeyCache implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Auth');
  private readonly entries = new Map<string, { principal: Principal; expires: number }>();
  private changes = 0;
  private listening = false;
  private client: Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** When the last answered heartbeat (or the LISTEN) was sent. */
  private confirmedAt = 0;
  private retryMs = RETRY_MS.first;
  private stopped = false;
  private readonly observe = (r: { observe(v: number): void }) => r.observe(this.active ? 1 : 0);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  /** Whether keys are being cached: enabled, and the change listener is connected and answering. */
  get active(): boolean {
    return this.listening && this.config.auth.keyCacheMs > 0 && Date.now() - this.confirmedAt < TRUST_MS;
  }

  get(hash: string): Principal | undefined {
    const entry = this.active ? this.entries.get(hash) : undefined;
    if (entry && entry.expires > Date.now()) {
      lookups.add(1, { source: 'cache' });
      return entry.principal;
    }
    if (entry) this.entries.delete(hash);
    lookups.add(1, { source: 'database' });
    return undefined;
  }

  /** Call before looking a key up in PostgreSQL; give the result to `set` with it. */
  begin(): number {
    return this.changes;
  }

  /** Caches a lookup's result, unless a change was announced (or the listener broke) since it began. */
  set(hash: string, principal: Principal, begun: number): void {
    if (!this.active || begun !== this.changes) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hash, { principal, expires: Date.now() + this.config.auth.keyCacheMs });
  }

  /** Drops one key (by id), or every key. */
  invalidate(keyId?: string): void {
    this.changes++;
    if (keyId === undefined) {
      this.entries.clear();
      return;
    }
    for (const [hash, entry] of this.entries) if (entry.principal.keyId === keyId) this.entries.delete(hash);
  }

  async onApplicationBootstrap(): Promise<void> {
    cacheActive.addCallback(this.observe);
    if (this.config.auth.keyCacheMs > 0) await this.listen();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    cacheActive.removeCallback(this.observe);
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    this.setListening(false);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  private setListening(on: boolean): void {
    this.invalidate();
    this.listening = on;
  }

  /** Connects and LISTENs; on failure or a later break, caching stops and a reconnect is scheduled. */
  private async listen(): Promise<void> {
    const url = (this.db.options as { url?: string }).url;
    const client = new Client({ connectionString: url, application_name: 'privatune-key-listener' });
    this.client = client;
    let broken = false;
    const onBreak = (err?: Error) => {
      if (broken) return;
      broken = true;
      clearInterval(this.heartbeat);
      this.setListening(false);
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (this.stopped || this.client !== client) return;
      this.logger.warn({ msg: 'API key change listener lost; every request looks its key up until it is back', error: err?.message });
      this.retry = setTimeout(() => void this.listen(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MS.max);
    };
    client.on('error', onBreak);
    client.on('end', () => onBreak());
    client.on('notification', (n: Notification) => {
      if (n.channel === API_KEY_CHANNEL) this.invalidate(n.payload || undefined);
    });
    try {
      await client.connect();
      const sent = Date.now();
      await client.query(`LISTEN ${API_KEY_CHANNEL}`);
      this.confirmedAt = sent;
    } catch (err) {
      onBreak(err as Error);
      return;
    }
    if (broken || this.stopped) return;
    this.retryMs = RETRY_MS.first;
    this.setListening(true);
    let inFlightSince = 0;
    this.heartbeat = setInterval(() => {
      if (inFlightSince) {
        // A connection that stopped answering is replaced (the cache already stopped trusting it).
        if (Date.now() - inFlightSince > 10 * HEARTBEAT_MS) onBreak(new Error('heartbeat unanswered for 10 s'));
        return;
      }
      const sent = (inFlightSince = Date.now());
      client.query('SELECT 1').then(
        () => {
          inFlightSince = 0;
          if (!broken) this.confirmedAt = sent;
        },
        (err: Error) => onBreak(err),
      );
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }
}
