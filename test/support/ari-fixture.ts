import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { AriClient, AriClientEvents } from '../../src/asterisk/ari-client.js';
import { within } from './within.js';

/**
 * A protocol fixture: a tiny HTTP + websocket server on 127.0.0.1 that answers like Asterisk's ARI
 * in the ways a test scripts (status codes and bodies from the Asterisk 22 wire reference), for
 * cases the simulator does not produce on demand: error bodies, stalled upgrades, missing pongs,
 * the HTML 404 / 503 phases of a restart.
 */

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Reply {
  status: number;
  body?: string | Buffer;
  contentType?: string;
  delayMs?: number;
}

/** How the fixture answers a websocket upgrade: accept it, never answer it, or refuse with a reply. */
export type UpgradeDecision = 'accept' | 'hang' | Reply;

/** Asterisk's HTTP server before res_ari is loaded (restart.jsonl). */
export const HTML_404 =
  '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n<title>404 Not Found</title>\r\n</head><body>\r\n' +
  '<h1>Not Found</h1>\r\n<p>The requested URL was not found on this server.</p>\r\n<hr />\r\n<address>Asterisk</address>\r\n</body></html>\r\n';

export class AriFixture {
  readonly requests: RecordedRequest[] = [];
  readonly upgrades: RecordedRequest[] = [];
  readonly sockets = new Set<WebSocket>();
  /** Most sockets open at the same time. */
  maxConcurrent = 0;
  onRequest: (req: RecordedRequest) => Reply | Promise<Reply> = () => ({ status: 204 });
  onUpgrade: (req: RecordedRequest) => UpgradeDecision = () => 'accept';
  readonly wss: WebSocketServer;
  #server: Server;
  /** Upgrade requests left unanswered; the HTTP server no longer tracks them. */
  readonly #hanging: Duplex[] = [];
  port = 0;

  private constructor(autoPong: boolean) {
    this.wss = new WebSocketServer({ noServer: true, autoPong });
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('upgrade', (req, socket, head) => {
      // The client may reset a refused upgrade (close() during a reconnect attempt).
      socket.on('error', () => {});
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: '',
      };
      this.upgrades.push(recorded);
      const decision = this.onUpgrade(recorded);
      if (decision === 'hang') {
        this.#hanging.push(socket);
        return;
      }
      if (decision === 'accept') {
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.sockets.add(ws);
          this.maxConcurrent = Math.max(this.maxConcurrent, this.sockets.size);
          ws.on('close', () => this.sockets.delete(ws));
          this.wss.emit('connection', ws, req);
        });
        return;
      }
      const body = decision.body ?? '';
      socket.end(
        `HTTP/1.1 ${decision.status} X\r\nServer: Asterisk\r\nContent-Type: ${decision.contentType ?? 'application/json'}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  }

  /** Listens on a free port. `autoPong: false` makes the server ignore pings (a dead peer). */
  static async start(options: { autoPong?: boolean } = {}): Promise<AriFixture> {
    const fixture = new AriFixture(options.autoPong ?? true);
    fixture.#server.listen(0, '127.0.0.1');
    await once(fixture.#server, 'listening');
    fixture.port = (fixture.#server.address() as AddressInfo).port;
    return fixture;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves with the next accepted websocket. */
  nextSocket(): Promise<WebSocket> {
    return once(this.wss, 'connection').then(([ws]) => ws as WebSocket);
  }

  /** Sends an event object (or raw text) to every open socket. */
  send(event: object | string): void {
    const text = typeof event === 'string' ? event : JSON.stringify(event);
    for (const ws of this.sockets) ws.send(text);
  }

  /** Drops every socket without a close frame, as `core restart now` does (client sees 1006). */
  dropAll(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  async close(): Promise<void> {
    this.dropAll();
    for (const socket of this.#hanging) socket.destroy();
    this.wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    this.requests.push(recorded);
    const reply = await this.onRequest(recorded);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    const headers: Record<string, string> = { Server: 'Asterisk', 'Cache-Control': 'no-cache, no-store' };
    if (reply.body !== undefined) headers['Content-type'] = reply.contentType ?? 'application/json';
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  }
}

/** Resolves with the arguments of the client's next emission of `name`, or fails after `ms`. */
export function nextClientEvent<K extends keyof AriClientEvents>(
  c: AriClient,
  name: K,
  ms = 5000,
): Promise<AriClientEvents[K]> {
  return within(new Promise((resolve) => c.once(name, (...args) => resolve(args))), ms, `'${name}'`);
}

/** Connects `c` to `f` and resolves with the server side of its events socket. */
export async function connected(f: AriFixture, c: AriClient): Promise<WebSocket> {
  const socket = f.nextSocket();
  await c.connect();
  return within(socket, 5000, 'the server-side socket');
}

/** A Channel object shaped like Asterisk 22's. */
export function channel(id: string) {
  return {
    id,
    name: `PJSIP/alice-0000000${id.slice(-1)}`,
    state: 'Ring',
    protocol_id: '1-1@127.0.0.1',
    caller: { name: 'Alice', number: 'alice' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'from-sip', exten: '1000', priority: 2, app_name: 'Stasis', app_data: 'test,1000' },
    creationtime: '2026-11-23T09:23:41.950+0000',
    language: 'en',
  };
}

/** The fields every ARI event carries. */
export function envelope(type: string) {
  return {
    type,
    timestamp: '2026-11-23T09:23:41.951+0000',
    asterisk_id: '02:fc:00:00:00:01',
    application: 'test',
  };
}

export function stasisStart(id: string, args: string[] = ['1000']) {
  return { ...envelope('StasisStart'), args, channel: channel(id) };
}

export function dtmf(id: string, digit: string) {
  return { ...envelope('ChannelDtmfReceived'), digit, duration_ms: 280, channel: channel(id) };
}
