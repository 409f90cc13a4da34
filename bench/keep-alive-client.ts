/**
 * A load generator's HTTP/1.1 client: one keep-alive connection per closed-loop client, each request written
 * as prebuilt bytes and its answer read whole by its Content-Length, nothing else parsed (as wrk does).
 *
 * The benchmark's clients share the cores with the server they measure, while the raw engine they are
 * compared with has no client at all; node:http's client (agent, parser, header objects, streams) cost
 * those cores 0.16-0.42 ms per request, the share of a request the target leaves to HTTP and GraphQL
 * together. It stays honest: every answer's status and body are checked by the caller.
 */
import { connect, Socket } from 'node:net';

export interface Answer {
  status: number;
  body: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** A POST request's bytes, built once and sent as often as needed. */
export function postBytes(host: string, port: number, path: string, headers: Record<string, string>, body: string): Buffer {
  const payload = Buffer.from(body);
  const lines = [`POST ${path} HTTP/1.1`, `host: ${host}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${payload.length}`];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
}

export class KeepAliveConnection {
  private received: Buffer[] = [];
  private receivedBytes = 0;
  /** Total length of the answer being read (header and body) once its header is complete. */
  private answerBytes = -1;
  private headerBytes = 0;
  private status = 0;
  private waiting?: { resolve: (a: Answer) => void; reject: (e: Error) => void };

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
  }

  static open(host: string, port: number): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new KeepAliveConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends one request (bytes from postBytes) and resolves with its whole answer; one at a time. */
  send(request: Buffer): Promise<Answer> {
    if (this.waiting) return Promise.reject(new Error('a request is already in flight on this connection'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.received.push(chunk);
    this.receivedBytes += chunk.length;
    if (this.answerBytes < 0 && !this.readHeader()) return;
    if (this.receivedBytes < this.answerBytes) return;
    if (this.receivedBytes > this.answerBytes) return this.fail(new Error('bytes after the answer (nothing was pipelined)'));
    const all = this.received.length === 1 ? this.received[0] : Buffer.concat(this.received, this.receivedBytes);
    const answer = { status: this.status, body: all.subarray(this.headerBytes) };
    this.received = [];
    this.receivedBytes = 0;
    this.answerBytes = -1;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(answer);
  }

  /** Parses the status and Content-Length once the header is complete; false while it is not. */
  private readHeader(): boolean {
    if (this.received.length > 1) this.received = [Buffer.concat(this.received, this.receivedBytes)];
    const data = this.received[0];
    const end = data.indexOf(HEADER_END);
    if (end < 0) return false;
    const header = data.toString('latin1', 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(header);
    if (!length) {
      this.fail(new Error(`an answer without Content-Length: ${header.slice(0, 200)}`));
      return false;
    }
    this.status = Number(header.slice(9, 12));
    this.headerBytes = end + HEADER_END.length;
    this.answerBytes = this.headerBytes + Number(length[1]);
    return true;
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }
}
