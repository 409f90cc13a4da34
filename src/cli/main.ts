#!/usr/bin/env node
/**
 * The `privatune` command (npm run cli -- <args>).
 *
 *   privatune apikey create --role <role> --name <name>   prints the new key once
 *   privatune apikey list [--all]                          keys as JSON lines (never the secrets)
 *   privatune apikey revoke <id|prefix>
 *   privatune migrate                                      applies pending migrations
 *   privatune privacy epsilon|calibrate ...                accounting (see src/cli/privacy-command.ts)
 *   privatune finetune request|status ...                  finetunes through a running platform (src/cli/finetune-command.ts)
 *
 * Exit codes: 0 success, 2 bad usage or input (one line on stderr, nothing on stdout), 1 other failure.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DataSource } from 'typeorm';
import { ConfigError, loadConfig } from '../config/config';
import { DomainError } from '../common/errors/domain-errors';
import { ApiKey } from '../modules/auth/api-key.entity';
import { ApiKeysService } from '../modules/auth/api-keys.service';
import { Role, ROLES } from '../modules/auth/role';
import { dataSourceOptions, runMigrations } from '../modules/database/data-source';
import { resolveDatabase } from '../modules/database/database-url';
import { CliUsageError, runFinetuneCommand } from './finetune-command';
import { runPrivacyCommand } from './privacy-command';

export class UsageError extends Error {}

const USAGE = `usage: privatune <command>
  apikey create --role <${ROLES.join('|')}> --name <name>
  apikey list [--all]
  apikey revoke <id|prefix>
  migrate
  privacy epsilon --delta D --accountant exact|rdp|pld|auto --events JSON|@file
  privacy calibrate --target-epsilon E --delta D [--sampling-rate Q] [--steps T] [--accountant A]
  finetune request --dataset ID (--target-epsilon E | --noise-multiplier S) [--method M] [--model-name N] [--wait]
  finetune status JOB_ID [--wait]          (platform: PRIVATUNE_URL, key: PRIVATUNE_API_KEY)`;

interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** Runs fn with the platform database (DATABASE_URL or the embedded one), migrated. */
async function withDatabase<T>(fn: (ds: DataSource) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const database = await resolveDatabase(config);
  try {
    await runMigrations(database.url);
    const ds = new DataSource(dataSourceOptions(database.url, { extra: { max: 2 } }));
    await ds.initialize();
    try {
      return await fn(ds);
    } finally {
      await ds.destroy();
    }
  } finally {
    await database.close();
  }
}

async function apikey(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'create') {
    const { values } = parseArgs({ args: rest, options: { role: { type: 'string' }, name: { type: 'string' } }, strict: true });
    if (!values.role || !ROLES.includes(values.role as Role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    if (!values.name?.trim()) throw new UsageError('--name is required');
    const { apiKey, key } = await withDatabase((ds) => new ApiKeysService(ds.getRepository(ApiKey)).create({ name: values.name!, role: values.role as Role }));
    io.stderr(`Created API key "${apiKey.name}" (${apiKey.role}, id ${apiKey.id}). It is shown only this once:\n`);
    io.stdout(`${key}\n`);
    return 0;
  }
  if (sub === 'list') {
    const { values } = parseArgs({ args: rest, options: { all: { type: 'boolean' } }, strict: true });
    const keys = await withDatabase(async (ds) => {
      const service = new ApiKeysService(ds.getRepository(ApiKey));
      const out: ApiKey[] = [];
      let after: { createdAt: Date; id: string } | undefined;
      for (;;) {
        const page = await service.list({ first: 100, after, includeRevoked: values.all });
        out.push(...page);
        if (page.length < 100) return out;
        after = { createdAt: page[page.length - 1].createdAt, id: page[page.length - 1].id };
      }
    });
    for (const k of keys) {
      io.stdout(`${JSON.stringify({ id: k.id, name: k.name, role: k.role, prefix: k.keyPrefix, createdAt: k.createdAt, revokedAt: k.revokedAt })}\n`);
    }
    return 0;
  }
  if (sub === 'revoke') {
    const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true, strict: true });
    if (positionals.length !== 1) throw new UsageError('apikey revoke takes one key id or prefix');
    const k = await withDatabase((ds) => new ApiKeysService(ds.getRepository(ApiKey)).revoke(positionals[0]));
    io.stdout(`${JSON.stringify({ id: k.id, name: k.name, revokedAt: k.revokedAt })}\n`);
    return 0;
  }
  throw new UsageError(`unknown apikey command "${sub ?? ''}"`);
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'apikey':
        return await apikey(rest, io);
      case 'migrate': {
        const config = loadConfig();
        const database = await resolveDatabase(config);
        try {
          const applied = await runMigrations(database.url);
          io.stdout(`${JSON.stringify({ applied })}\n`);
        } finally {
          await database.close();
        }
        return 0;
      }
      case 'privacy':
        return await runPrivacyCommand(rest, { ...io, readFile: (p: string) => readFileSync(p, 'utf8') });
      case 'finetune':
        return await runFinetuneCommand(rest, { ...io, env: process.env });
      case undefined:
      case 'help':
      case '--help':
        io.stderr(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliUsageError || err instanceof ConfigError || err instanceof DomainError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`privatune: ${(err as Error).message.split('\n')[0]}\n`);
      return 2;
    }
    io.stderr(`privatune: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`privatune: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
