import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { type AriRequest, type AriResponse, type AriRoute, ariRoutes } from './ari-routes.js';
import { type Pbx, PbxError } from './pbx.js';

/** Options of {@link AriServer}. */
export interface AriServerOptions {
  users: Record<string, string>;
}

const JSON_HEADERS = { 'Content-type': 'application/json' };

/** Longest request line Asterisk's HTTP server reads (a 4096-byte buffer with CR LF and NUL); longer: 400. */
const MAX_REQUEST_LINE = 4093;
/** Longest request body it reads (`MAX_CONTENT_LENGTH`); longer: 413 `Request body too large`. */
const MAX_BODY_BYTES = 40_960;

/**
 * Test-facing observation hook: emitted on the {@link Pbx} as `'ari-request'` for every
 * authenticated REST request that matched an ARI operation, just before the operation runs
 * (`sim.pbx.on('ari-request', (r: AriRequestEvent) => …)`). Benchmarks use it to time the round
 * trip from something the PBX did (a key press, a StasisStart) to the app's next request. Nothing
 * is computed when no listener is attached; a listener runs synchronously and must not throw (the
 * request would be answered 500). Not part of Asterisk's behaviour.
 */
export interface AriRequestEvent {
  /** `GET`, `POST`, `DELETE`… */
  method: string;
  /** The path below `/ari`, e.g. `/channels/1700000000.3/play`. */
  path: string;
  /** The route's path parameters (`channelId`, `bridgeId`, `playbackId`…), decoded. */
  params: Record<string, string>;
  /** `params.channelId`, when the operation is on a channel. */
  channelId?: string;
  /** The query parameters, with the body's scalar fields (as the operation sees them). */
  query: Record<string, string>;
  /** When the request reached the server (before its body was read), on the `performance.now()` clock. */
  receivedAt: number;
}

/**
 * The simulator's ARI: REST under `/ari/…` and the events websocket `/ari/events`, answering the
 * way Asterisk 22's res_ari does (status codes, error bodies, headers).
 */
export class AriServer {
  private http?: Server;
  private wss?: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private readonly routes: AriRoute[];
  /**
   * The window after a restart: `http-only` answers every ARI URL with the HTTP server's HTML 404
   * (res_ari not loaded yet), `not-booted` with 503 "Asterisk not booted".
   */
  booting: false | 'http-only' | 'not-booted' = false;
  /**
   * The final phase of a shutdown (`ast_shutdown_final()`): Asterisk's HTTP server answers every
   * request, whatever its URL and before authentication, with an HTML `503 Shutdown in progress`.
   */
  shuttingDown = false;
  private frozenState = false;
  /** Sockets corked by {@link freeze}. */
  private readonly corked = new Set<Socket>();
  /** Requests and upgrades that arrived while frozen, run by {@link thaw}. */
  private held: (() => void)[] = [];

  constructor(
    private readonly pbx: Pbx,
    private readonly options: AriServerOptions,
  ) {
    this.routes = ariRoutes(pbx);
  }

  get port(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** With `tls`, serves https and wss (http.conf tlsenable) instead of http and ws. */
  async listen(port: number, host: string, tls?: { cert: string; key: string }): Promise<void> {
    const http: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : createServer();
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const run = () =>
        this.handle(req, res).catch(() => {
          if (!res.headersSent)
            this.send(res, 500, { message: 'An internal error prevented this request from being handled' });
        });
      if (this.frozenState) this.held.push(run);
      else run();
    });
    http.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.corked.delete(socket);
      });
      if (this.frozenState) this.cork(socket);
    });
    const wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req, socket, head) => {
      const run = () => {
        if (!(socket as Socket).destroyed) this.upgrade(wss, req, socket as Socket, head);
      };
      if (this.frozenState) this.held.push(run);
      else run();
    });
    this.http = http;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  }

  /** True between {@link freeze} and {@link thaw}. */
  get frozen(): boolean {
    return this.frozenState;
  }

  /**
   * Stops answering without closing anything, as a process stopped with SIGSTOP does: nothing more
   * is written on any connection (responses, events and websocket pongs are held back), requests
   * and websocket upgrades that arrive wait, new connections are accepted but not served.
   */
  freeze(): void {
    if (this.frozenState) return;
    this.frozenState = true;
    for (const socket of this.sockets) this.cork(socket);
  }

  /** Undoes {@link freeze}: held output is written and held requests run, in arrival order. */
  thaw(): void {
    if (!this.frozenState) return;
    this.frozenState = false;
    for (const socket of this.corked) if (!socket.destroyed) socket.uncork();
    this.corked.clear();
    const held = this.held;
    this.held = [];
    for (const run of held) run();
  }

  private cork(socket: Socket): void {
    if (this.corked.has(socket)) return;
    this.corked.add(socket);
    socket.cork();
  }

  /** Drops every connection at once (websockets without a close frame, as a crash or restart does). */
  async close(): Promise<void> {
    this.frozenState = false;
    this.held = [];
    this.corked.clear();
    for (const client of this.wss?.clients ?? []) client.terminate();
    for (const socket of this.sockets) socket.destroy();
    this.wss?.close();
    const http = this.http;
    this.http = undefined;
    if (http) await new Promise<void>((resolve) => http.close(() => resolve()));
  }

  private authenticated(req: IncomingMessage, url: URL): boolean {
    let user: string | undefined;
    let pass: string | undefined;
    const header = req.headers.authorization;
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      user = decoded.slice(0, i);
      pass = decoded.slice(i + 1);
    } else {
      const key = url.searchParams.get('api_key');
      if (key) {
        const i = key.indexOf(':');
        user = key.slice(0, i);
        pass = key.slice(i + 1);
      }
    }
    return user !== undefined && this.options.users[user] !== undefined && this.options.users[user] === pass;
  }

  private send(
    res: ServerResponse,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ): void {
    const base = { Server: 'Asterisk', 'Cache-Control': 'no-cache, no-store', ...headers };
    if (body === undefined) {
      res.writeHead(status, { ...base, 'Content-Length': '0' });
      res.end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      res.writeHead(status, { ...base, 'Content-Length': String(body.length) });
      res.end(body);
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { ...base, ...JSON_HEADERS, 'Content-Length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  /** An error page the way Asterisk's HTTP server writes it (e.g. `400 Request line too long`). */
  private sendHtml(
    res: ServerResponse,
    status: number,
    title: string,
    text: string,
    headers: Record<string, string> = {},
  ): void {
    const html =
      '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n' +
      `<title>${status} ${title}</title>\r\n</head><body>\r\n<h1>${title}</h1>\r\n<p>${text}</p>\r\n<hr />\r\n` +
      '<address>Asterisk</address>\r\n</body></html>\r\n';
    res.writeHead(status, {
      Server: 'Asterisk',
      'Cache-Control': 'no-cache, no-store',
      'Content-type': 'text/html',
      'Content-Length': String(Buffer.byteLength(html)),
      ...headers,
    });
    res.end(html);
  }

  private sendHtml404(res: ServerResponse): void {
    const html =
      '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n<title>404 Not Found</title>\r\n' +
      '</head><body>\r\n<h1>Not Found</h1>\r\n<p>The requested URL was not found on this server.</p>\r\n<hr />\r\n' +
      '<address>Asterisk Server</address>\r\n</body></html>\r\n';
    res.writeHead(404, {
      Server: 'Asterisk',
      'Content-Type': 'text/html',
      'Content-Length': String(html.length),
    });
    res.end(html);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    if (`${req.method} ${req.url} HTTP/${req.httpVersion}`.length > MAX_REQUEST_LINE) {
      return this.sendHtml(res, 400, 'Bad Request', 'Request line too long', { Connection: 'close' });
    }
    if (this.shuttingDown) {
      return this.sendHtml(res, 503, 'Service Unavailable', 'Shutdown in progress', { Connection: 'close' });
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if ((!url.pathname.startsWith('/ari/') && url.pathname !== '/ari') || this.booting === 'http-only') {
      return this.sendHtml404(res);
    }
    if (this.booting) return this.send(res, 503, { message: 'Asterisk not booted' });
    if (!this.authenticated(req, url)) {
      return this.send(
        res,
        401,
        { message: 'Authentication required' },
        {
          'WWW-Authenticate': 'Basic realm="Asterisk REST Interface"',
        },
      );
    }
    const path = url.pathname.slice('/ari'.length);
    if (path.length > 1 && path.endsWith('/')) {
      return this.send(res, 404, {
        message: `ARI URLs do not end with a slash. Try /ari${path.slice(0, -1)}`,
      });
    }
    const raw = await readBody(req);
    if (raw.length > MAX_BODY_BYTES) {
      return this.send(res, 413, { message: 'Request body too large' }, { Connection: 'close' });
    }
    let body: Record<string, unknown> = {};
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
      } catch {
        return this.send(res, 400, { message: 'Error parsing request body' });
      }
    }
    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    const matches = this.routes.filter((r) => matchSegments(r.pattern, segments) !== undefined);
    if (matches.length === 0) return this.send(res, 404, { message: 'Resource not found' });
    const route = matches.find((r) => r.method === req.method);
    if (!route) {
      return this.send(
        res,
        405,
        { message: 'Invalid method' },
        { Allow: [...new Set(matches.map((m) => m.method))].join(',') },
      );
    }
    const query: Record<string, string> = {};
    // Asterisk also takes query parameters from a JSON body; the last repeated query key wins.
    for (const [k, v] of Object.entries(body)) if (typeof v !== 'object') query[k] = String(v);
    for (const [k, v] of url.searchParams) query[k] = v;
    const request: AriRequest = { params: matchSegments(route.pattern, segments)!, query, body };
    if (this.pbx.listenerCount('ari-request') > 0) {
      const event: AriRequestEvent = {
        method: route.method,
        path,
        params: request.params,
        query,
        receivedAt,
      };
      if (request.params.channelId !== undefined) event.channelId = request.params.channelId;
      this.pbx.emit('ari-request', event);
    }
    let response: AriResponse;
    try {
      response = await route.handler(request);
    } catch (e) {
      if (e instanceof PbxError) return this.send(res, e.status, e.body());
      throw e;
    }
    this.send(res, response.status, response.body, response.headers);
  }

  private upgrade(wss: WebSocketServer, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const reject = (status: number, statusText: string, body: string, type = 'application/json') => {
      socket.end(
        `HTTP/1.1 ${status} ${statusText}\r\nServer: Asterisk\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    const appParam = url.searchParams.get('app');
    const refusal: [number, string, string, string?] | undefined = this.shuttingDown
      ? [503, 'Service Unavailable', 'Shutdown in progress', 'text/html']
      : url.pathname !== '/ari/events'
        ? [404, 'Not Found', JSON.stringify({ message: 'Resource not found' })]
        : this.booting === 'http-only'
          ? [404, 'Not Found', 'The requested URL was not found on this server.', 'text/html']
          : this.booting
            ? [503, 'Service Unavailable', JSON.stringify({ message: 'Asterisk not booted' })]
            : !this.authenticated(req, url)
              ? [401, 'Unauthorized', JSON.stringify({ message: 'Authentication required' })]
              : !appParam
                ? [400, 'Bad Request', 'HTTP request is missing param: [app]', 'text/html']
                : undefined;
    if (refusal || !appParam) {
      if (refusal) reject(...refusal);
      return;
    }
    const subscribeAll = ['true', 'yes', '1'].includes(
      (url.searchParams.get('subscribeAll') ?? '').toLowerCase(),
    );
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const send = (json: string) => {
        if (ws.readyState === ws.OPEN) ws.send(json);
      };
      const unregister = appParam.split(',').map((app) => this.pbx.registerApp(app, subscribeAll, send));
      ws.on('close', () => {
        for (const u of unregister) u();
      });
      ws.on('error', () => {});
    });
  }
}

function matchSegments(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!;
    else if (p !== segments[i]) return undefined;
  }
  return params;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
