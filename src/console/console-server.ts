/**
 * The live web console of a Server (`console: { port }`): one page listing the calls and text
 * conversations as they happen, with their transcripts, the last ended ones, and the health at a
 * glance; updates stream as server-sent events. Read-only unless a token is configured: then a
 * request carrying it may hang up a call or end a conversation. With a {@link Softphone} (the
 * sandbox), the page is also a phone: `/api/phone` carries its call over a WebSocket.
 *
 * Served by the library itself on 127.0.0.1 by default: transcripts are personal data, so exposing
 * the console on other interfaces is the operator's explicit choice (`host`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { Server, ServerHealth } from '../server.js';
import { CONSOLE_PAGE } from './console-page.js';
import { LiveSessions, type SessionUpdate } from './live-sessions.js';
import type { Softphone } from './softphone.js';
import { serveSoftphone } from './softphone-socket.js';

/** Options of the web console ({@link ServerOptions.console}). */
export interface ConsoleOptions {
  /** TCP port; 0 picks a free one (see {@link Server.consoleUrl}). */
  port: number;
  /** Address to listen on. Default `127.0.0.1`: the console shows what callers say. */
  host?: string;
  /**
   * Enables the controls (hang up a call, end a conversation) for requests that carry it
   * (`Authorization: Bearer <token>`). Without it the console is read-only.
   */
  token?: string;
  /** Ended calls and conversations listed. Default 20. */
  keepEnded?: number;
  /** A phone network for the page's softphone (the sandbox's: `simulatorSoftphone(sim)`). */
  softphone?: Softphone;
}

/** Server-sent events are kept alive with a comment this often (proxies drop idle streams). */
const KEEPALIVE_MS = 15_000;
/** Unsent bytes a page's event stream may hold before it is dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * A Server's web console.
 *
 * @internal Created by the Server when `console` is set.
 */
export class ConsoleServer {
  readonly sessions: LiveSessions;
  private readonly http: HttpServer;
  private readonly phoneSockets?: WebSocketServer;
  private readonly streams = new Set<ServerResponse>();
  private readonly detach: (() => void)[] = [];
  private readonly tokenDigest?: Buffer;
  private keepalive?: NodeJS.Timeout;

  private constructor(
    private readonly server: Server,
    private readonly options: ConsoleOptions,
    private readonly logger: Logger,
  ) {
    this.sessions = new LiveSessions({ keepEnded: options.keepEnded ?? 20 });
    if (options.token) this.tokenDigest = digest(options.token);
    this.http = createServer((request, response) => {
      this.route(request, response).catch((error: unknown) => {
        this.logger.warn({ err: String(error) }, 'console request failed');
        if (!response.headersSent) json(response, 500, { error: 'internal error' });
        else response.end();
      });
    });
    if (options.softphone) {
      const softphone = options.softphone;
      this.phoneSockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
      this.phoneSockets.on('connection', (socket) => serveSoftphone(socket, softphone, this.logger));
    }
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const sockets = this.phoneSockets;
      if (!sockets || pathOf(request) !== '/api/phone') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      // Browsers let any page open a WebSocket to localhost: only the console's own page may.
      if (!sameOrigin(request)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
        return;
      }
      sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit('connection', ws, request));
    });
    this.attach();
  }

  /** Creates the console of `server` and starts listening. */
  static async start(server: Server, options: ConsoleOptions, logger: Logger): Promise<ConsoleServer> {
    const instance = new ConsoleServer(server, options, logger);
    try {
      await new Promise<void>((resolve, reject) => {
        instance.http.once('error', reject);
        instance.http.listen(options.port, options.host ?? '127.0.0.1', () => {
          instance.http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await instance.close();
      throw error;
    }
    logger.info({ url: instance.url, controls: options.token ? 'on' : 'off' }, 'web console listening');
    return instance;
  }

  /** `http://host:port/` of the console. */
  get url(): string {
    const address = this.http.address() as AddressInfo | null;
    if (!address) return '';
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}/`;
  }

  /** Stops the console: open pages see their stream end. Idempotent. */
  async close(): Promise<void> {
    for (const d of this.detach.splice(0)) d();
    clearInterval(this.keepalive);
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    for (const ws of this.phoneSockets?.clients ?? []) ws.terminate();
    this.phoneSockets?.close();
    if (!this.http.listening) return;
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private attach(): void {
    const s = this.server;
    const onCall = (ui: Parameters<LiveSessions['trackCall']>[0]) => {
      this.sessions.trackCall(ui);
      this.broadcast('totals', this.sessions.totals);
    };
    const onCallEnded = (ui: Parameters<LiveSessions['trackCall']>[0], outcome: { error?: unknown }) => {
      this.sessions.callEnded(ui, outcome.error);
      this.broadcast('totals', this.sessions.totals);
    };
    const onConversation = (ui: Parameters<LiveSessions['trackConversation']>[0]) => {
      this.sessions.trackConversation(ui);
      this.broadcast('totals', this.sessions.totals);
    };
    const onHealth = (health: ServerHealth) => this.broadcast('health', health);
    s.on('callStarted', onCall);
    s.on('callEnded', onCallEnded);
    s.on('conversationStarted', onConversation);
    s.on('health', onHealth);
    const unsubscribe = this.sessions.subscribe((update: SessionUpdate) => this.broadcast('update', update));
    this.keepalive = setInterval(() => {
      for (const stream of this.streams) stream.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.keepalive.unref();
    this.detach.push(
      () => s.off('callStarted', onCall),
      () => s.off('callEnded', onCallEnded),
      () => s.off('conversationStarted', onConversation),
      () => s.off('health', onHealth),
      unsubscribe,
    );
  }

  private snapshot(): object {
    return {
      ...this.sessions.snapshot(),
      health: this.server.health(),
      totals: this.sessions.totals,
      metricsUrl: this.server.metricsUrl ?? null,
      controls: this.tokenDigest !== undefined,
      softphone: this.options.softphone ? { identity: this.options.softphone.identity } : null,
    };
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = pathOf(request);
    const method = request.method ?? 'GET';
    if (method === 'GET' && (path === '/' || path === '/index.html')) {
      response
        .writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
        })
        .end(CONSOLE_PAGE);
      return;
    }
    if (method === 'GET' && path === '/api/state') return json(response, 200, this.snapshot());
    if (method === 'GET' && path === '/api/events') return this.openStream(request, response);
    const hangup = /^\/api\/sessions\/([^/]+)\/hangup$/.exec(path);
    if (hangup && method === 'POST') {
      request.resume();
      if (!this.tokenDigest) {
        return json(response, 403, {
          error: 'The console is read-only: set console.token to enable controls',
        });
      }
      if (!this.authorised(request)) return json(response, 401, { error: 'Wrong or missing token' });
      const id = decodeURIComponent(hangup[1] ?? '');
      const ended = await this.sessions.end(id);
      if (!ended) return json(response, 404, { error: `No live call or conversation ${id}` });
      this.logger.info({ session: id }, 'ended from the web console');
      return json(response, 200, { ended: id });
    }
    json(response, 404, { error: 'Not found' });
  }

  private openStream(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    response.write(event('snapshot', this.snapshot()));
    this.streams.add(response);
    const drop = () => this.streams.delete(response);
    request.on('close', drop);
    response.on('error', drop);
  }

  private broadcast(name: string, data: unknown): void {
    if (this.streams.size === 0) return;
    const text = event(name, data);
    for (const stream of this.streams) {
      // A page that does not read (a stalled tab) is dropped rather than buffered without end;
      // EventSource reconnects and starts again from a snapshot.
      if (stream.writableLength > MAX_BUFFERED_BYTES) {
        this.streams.delete(stream);
        stream.destroy();
        continue;
      }
      stream.write(text);
    }
  }

  private authorised(request: IncomingMessage): boolean {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match?.[1] || !this.tokenDigest) return false;
    // Digests have one length, so the comparison takes the same time whatever was sent.
    return timingSafeEqual(digest(match[1]), this.tokenDigest);
  }
}

/** No Origin (not a browser), or the console's own host. */
function sameOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function pathOf(request: IncomingMessage): string {
  return (request.url ?? '/').split('?')[0] ?? '/';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response
    .writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' })
    .end(JSON.stringify(body));
}
