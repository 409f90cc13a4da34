import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Datasets with budgets, grants, the append-only hash-chained privacy ledger, reservation state and
 * idempotency records. Ledger rows are immutable: a trigger refuses UPDATE, DELETE and TRUNCATE.
 */
export class DatasetsLedger1764300100000 implements MigrationInterface {
  name = 'DatasetsLedger1764300100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TYPE dataset_format AS ENUM ('IDX', 'IMAGE_FOLDER')`);
    await q.query(`
      CREATE TABLE datasets (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
        description text NOT NULL DEFAULT '',
        format dataset_format NOT NULL,
        location text NOT NULL,
        class_names text[] NOT NULL,
        declared_size integer NOT NULL CHECK (declared_size > 0),
        privacy_unit text NOT NULL DEFAULT 'example',
        fingerprint text NOT NULL,
        epsilon_limit double precision NOT NULL CHECK (epsilon_limit > 0 AND epsilon_limit < 'Infinity'),
        delta double precision NOT NULL CHECK (delta > 0 AND delta < 1),
        delta_forced boolean NOT NULL DEFAULT false,
        created_by uuid REFERENCES api_keys(id),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX datasets_created_idx ON datasets (created_at, id)`);

    await q.query(`
      CREATE TABLE dataset_grants (
        dataset_id uuid NOT NULL REFERENCES datasets(id),
        api_key_id uuid NOT NULL REFERENCES api_keys(id),
        granted_by uuid REFERENCES api_keys(id),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (dataset_id, api_key_id)
      )`);

    await q.query(`CREATE TYPE ledger_entry_kind AS ENUM ('DATASET_REGISTERED', 'RESERVATION', 'COMMIT', 'ABORT', 'EXTERNAL_RELEASE', 'BUDGET_CHANGE')`);
    await q.query(`
      CREATE TABLE ledger_entries (
        id uuid PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES datasets(id),
        seq integer NOT NULL CHECK (seq >= 1),
        kind ledger_entry_kind NOT NULL,
        reservation_id uuid,
        events jsonb NOT NULL DEFAULT '[]',
        requester_id uuid,
        requester_name text,
        purpose text NOT NULL DEFAULT '',
        details jsonb NOT NULL DEFAULT '{}',
        epsilon_limit double precision NOT NULL,
        epsilon_spent double precision NOT NULL,
        epsilon_reserved double precision NOT NULL,
        accountant text NOT NULL,
        created_at timestamptz NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        UNIQUE (dataset_id, seq)
      )`);
    await q.query(`CREATE INDEX ledger_entries_reservation_idx ON ledger_entries (reservation_id) WHERE reservation_id IS NOT NULL`);
    await q.query(`
      CREATE FUNCTION ledger_entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'ledger entries are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_entries_immutable()`);
    await q.query(`
      CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_immutable()`);

    // Current state of each reservation; its history is in ledger_entries.
    await q.query(`CREATE TYPE reservation_status AS ENUM ('OPEN', 'COMMITTED', 'ABORTED')`);
    await q.query(`
      CREATE TABLE reservations (
        id uuid PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES datasets(id),
        status reservation_status NOT NULL DEFAULT 'OPEN',
        events jsonb NOT NULL,
        purpose text NOT NULL,
        purpose_kind text NOT NULL,
        requester_id uuid,
        released boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        resolved_at timestamptz
      )`);
    await q.query(`CREATE INDEX reservations_open_idx ON reservations (dataset_id) WHERE status = 'OPEN'`);

    await q.query(`
      CREATE TABLE idempotency_records (
        scope text NOT NULL,
        key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
        request_hash text NOT NULL,
        result jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, key)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_records`);
    await q.query(`DROP TABLE reservations`);
    await q.query(`DROP TYPE reservation_status`);
    await q.query(`DROP TABLE ledger_entries`);
    await q.query(`DROP FUNCTION ledger_entries_immutable`);
    await q.query(`DROP TYPE ledger_entry_kind`);
    await q.query(`DROP TABLE dataset_grants`);
    await q.query(`DROP TABLE datasets`);
    await q.query(`DROP TYPE dataset_format`);
  }
}
