import { MigrationInterface, QueryRunner } from 'typeorm';

export class ApiKeys1764300000000 implements MigrationInterface {
  name = 'ApiKeys1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TYPE api_key_role AS ENUM ('admin', 'data_steward', 'ml_engineer', 'auditor', 'inference_client')`);
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        role api_key_role NOT NULL,
        -- sha256 of the whole key: keys carry 192 random bits, so a fast hash is enough and lookups stay O(1).
        key_hash bytea NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        created_by uuid REFERENCES api_keys(id),
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        last_used_at timestamptz
      )`);
    await q.query(`CREATE INDEX api_keys_created_idx ON api_keys (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE api_keys`);
    await q.query(`DROP TYPE api_key_role`);
  }
}
