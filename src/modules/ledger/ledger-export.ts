/** Ledger exports. JSON carries everything needed to re-verify the hash chain independently. */
import { Dataset } from '../datasets/dataset.entity';
import { hashedPayload } from './hash-chain';
import { LedgerEntry } from './ledger-entry.entity';

export type ExportFormat = 'JSON' | 'CSV';

export function exportLedgerJson(dataset: Dataset, entries: LedgerEntry[]): string {
  return JSON.stringify(
    {
      format: 'privatune-ledger/1',
      hashing: 'sha256(prevHash + "\\n" + canonicalJson(entry without hash)); canonical JSON sorts keys; first prevHash is 64 zeros',
      dataset: {
        id: dataset.id,
        name: dataset.name,
        fingerprint: dataset.fingerprint,
        declaredSize: dataset.declaredSize,
        delta: dataset.delta,
        epsilonLimit: dataset.epsilonLimit,
      },
      entries: entries.map((e) => ({ ...hashedPayload(e), prevHash: e.prevHash, hash: e.hash })),
    },
    null,
    2,
  );
}

const CSV_COLUMNS = [
  'seq', 'created_at', 'kind', 'requester', 'purpose', 'events', 'epsilon_limit', 'epsilon_spent', 'epsilon_reserved',
  'accountant', 'reservation_id', 'id', 'prev_hash', 'hash',
] as const;

function csvCell(value: unknown): string {
  const s = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  // Quote always when needed; neutralise spreadsheet formulas in free text.
  const safe = /^[=+\-@\t\r]/.test(s) && typeof value === 'string' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function exportLedgerCsv(entries: LedgerEntry[]): string {
  const rows = entries.map((e) =>
    [
      e.seq, e.createdAt.toISOString(), e.kind, e.requesterName ?? e.requesterId ?? '', e.purpose, e.events, e.epsilonLimit,
      e.epsilonSpent, e.epsilonReserved, e.accountant, e.reservationId ?? '', e.id, e.prevHash, e.hash,
    ].map(csvCell).join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}
