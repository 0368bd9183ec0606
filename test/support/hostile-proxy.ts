/**
 * Man-in-the-middle proxies between the library and the simulator, over real sockets, that inject
 * hostile input into what the library receives: the ARI proxy forwards REST as it is and relays
 * the events websocket with garbage frames before each real one; the AMI proxy forwards actions as
 * they are and puts garbage (ended by a blank line, AMI's only way to resynchronise) before each
 * real message, cutting the bytes at random points.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { type AriFrame, hostileAmiFrame, hostileAriFrame, type Rng, randomSplits } from './fuzz.js';

interface Upstream {
  host: string;
  port: number;
}

/** ARI: REST forwarded, the events websocket relayed with `perEvent` hostile frames before each event. */
export class HostileAriProxy {
  /** Hostile frames sent to the library so far. */
  injected = 0;
  /** Real events relayed. */
  relayed = 0;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #sockets = new Set<WebSocket>();

  private constructor(
    private readonly upstream: Upstream,
    private readonly rng: Rng,
    private readonly perEvent: number,
  ) {
    this.#server = createServer((req, res) => {
      const forward = request(
        { host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    this.#server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  static async start(upstream: Upstream, rng: Rng, perEvent: number): Promise<HostileAriProxy> {
    const proxy = new HostileAriProxy(upstream, rng, perEvent);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const up = new WebSocket(`ws://${this.upstream.host}:${this.upstream.port}${req.url}`, {
      headers: req.headers.authorization ? { Authorization: req.headers.authorization } : {},
    });
    up.on('error', () => socket.destroy());
    up.once('unexpected-response', (_r, answer) => {
      socket.end(`HTTP/1.1 ${answer.statusCode} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    up.once('open', () => {
      this.#wss.handleUpgrade(req, socket, head, (down) => {
        this.#sockets.add(down);
        down.on('error', () => {});
        down.on('close', () => {
          this.#sockets.delete(down);
          up.close();
        });
        up.on('close', () => down.terminate());
        up.on('message', (data) => {
          for (let i = 0; i < this.perEvent; i++)
            this.#send(down, hostileAriFrame(this.rng, { bigEvery: 5000, deepEvery: 500 }));
          this.relayed++;
          down.send(String(data));
        });
      });
    });
  }

  #send(down: WebSocket, frame: AriFrame): void {
    this.injected++;
    if (frame.kind === 'binary') down.send(frame.data, { binary: true });
    else down.send(frame.text);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** AMI: actions forwarded, each real message preceded by `perMessage` hostile frames, bytes cut at random. */
export class HostileAmiProxy {
  /** Hostile frames sent to the library so far. */
  injected = 0;
  /** Real messages relayed. */
  relayed = 0;
  readonly #server: NetServer;
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly upstream: Upstream,
    private readonly rng: Rng,
    private readonly perMessage: number,
  ) {
    this.#server = createNetServer((down) => this.#accept(down));
  }

  static async start(upstream: Upstream, rng: Rng, perMessage: number): Promise<HostileAmiProxy> {
    const proxy = new HostileAmiProxy(upstream, rng, perMessage);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  #accept(down: Socket): void {
    const up = connect(this.upstream.port, this.upstream.host);
    for (const s of [down, up]) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.#sockets.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    let buffer = Buffer.alloc(0);
    let greeted = false;
    up.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!greeted) {
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        greeted = true;
        down.write(buffer.subarray(0, eol + 2));
        buffer = buffer.subarray(eol + 2);
      }
      for (let end = buffer.indexOf('\r\n\r\n'); end >= 0; end = buffer.indexOf('\r\n\r\n')) {
        const message = buffer.subarray(0, end + 4);
        buffer = buffer.subarray(end + 4);
        const parts: Buffer[] = [];
        for (let i = 0; i < this.perMessage; i++) {
          this.injected++;
          parts.push(hostileAmiFrame(this.rng), Buffer.from('\r\n\r\n'));
        }
        parts.push(message);
        this.relayed++;
        for (const piece of randomSplits(this.rng, Buffer.concat(parts), 6)) down.write(piece);
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
