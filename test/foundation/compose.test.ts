/** Docker does not run here: check the compose file's structure and that it matches what the README says. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { SHUTDOWN_GRACE_MS } from '../../src/config/config';

const ROOT = join(__dirname, '..', '..', '..');
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const services: Record<string, any> = compose.services;

describe('docker-compose.yml', () => {
  it('has every service the README names', () => {
    for (const name of ['postgres', 'platform', 'worker', 'gpu-worker', 'otel-collector', 'jaeger', 'prometheus', 'grafana']) {
      assert.ok(services[name], `service ${name}`);
      assert.match(readme, new RegExp('`' + name + '`'), `README mentions ${name}`);
    }
  });

  it('points the platform and every worker at the same PostgreSQL and the collector', () => {
    for (const name of ['platform', 'worker', 'gpu-worker']) {
      const env = services[name].environment;
      assert.equal(env.DATABASE_URL, 'postgres://privatune:privatune@postgres:5432/privatune', name);
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318', name);
      // The API process takes no jobs: finetunes run on the workers, not beside classify.
      assert.equal(env.PRIVATUNE_ROLE, name === 'platform' ? 'api' : 'worker', name);
    }
    const pg = services.postgres.environment;
    assert.equal(`postgres://${pg.POSTGRES_USER}:${pg.POSTGRES_PASSWORD}@postgres:5432/${pg.POSTGRES_DB}`, services.platform.environment.DATABASE_URL);
  });

  it('lets the platform and every worker stop gracefully before docker kills them', () => {
    for (const name of ['platform', 'worker', 'gpu-worker']) {
      const grace = /^(\d+)s$/.exec(String(services[name].stop_grace_period));
      assert.ok(grace, `${name} sets stop_grace_period in seconds`);
      assert.ok(Number(grace[1]) * 1000 > SHUTDOWN_GRACE_MS, `${name}: docker waits longer than the process's own shutdown limit`);
    }
  });

  it('gives GPU workers a GPU and the tfjs-node-gpu build, and lets workers scale', () => {
    const gpu = services['gpu-worker'];
    assert.deepEqual(gpu.profiles, ['gpu']);
    assert.equal(gpu.build.args.TFJS_GPU, '1');
    assert.equal(gpu.deploy.resources.reservations.devices[0].capabilities[0], 'gpu');
    assert.equal(services.worker.ports, undefined, 'no fixed host port, so --scale works');
  });

  it('wires Prometheus, the collector and Grafana to files that exist', () => {
    const prom = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    assert.equal(prom.scrape_configs[0].metrics_path, '/metrics');
    const collector = parse(readFileSync(join(ROOT, 'deploy/otel/collector.yaml'), 'utf8'));
    assert.ok(collector.receivers.otlp.protocols.http);
    for (const volume of [...services.grafana.volumes, ...services.prometheus.volumes, ...services['otel-collector'].volumes]) {
      const host = String(volume).split(':')[0];
      assert.ok(existsSync(join(ROOT, host)), `${host} exists`);
    }
  });
});
