import { connect, type Socket } from 'node:net';

/** One AMI message as ordered [key, value] pairs. */
export type RawAmiMessage = [string, string][];

/**
 * A deliberately dumb AMI peer (a TCP socket and string splitting, no library code) for checking
 * the simulator's bytes on the wire.
 */
export class RawAmi {
  readonly messages: RawAmiMessage[] = [];
  greeting = '';
  private buffer = '';
  private waiters: { pred: (m: RawAmiMessage) => boolean; resolve: (m: RawAmiMessage) => void }[] = [];
  private closedResolve!: () => void;
  readonly closed = new Promise<void>((resolve) => {
    this.closedResolve = resolve;
  });

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.closedResolve());
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RawAmi> {
    const socket = connect(port, '127.0.0.1');
    const ami = new RawAmi(socket);
    await new Promise<void>((resolve) => {
      const check = () => (ami.greeting ? resolve() : socket.once('data', () => setImmediate(check)));
      check();
    });
    return ami;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (!this.greeting) {
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) return;
      this.greeting = this.buffer.slice(0, eol);
      this.buffer = this.buffer.slice(eol + 2);
    }
    for (let end = this.buffer.indexOf('\r\n\r\n'); end >= 0; end = this.buffer.indexOf('\r\n\r\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 4);
      const message = block.split('\r\n').map((line): [string, string] => {
        const i = line.indexOf(': ');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 2)];
      });
      this.messages.push(message);
      for (const w of [...this.waiters]) {
        if (w.pred(message)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(message);
        }
      }
    }
  }

  /** Writes raw text. */
  write(text: string): void {
    this.socket.write(text);
  }

  /** Sends an action (`Key: Value` lines) and resolves with the response carrying its ActionID. */
  async send(fields: [string, string][]): Promise<RawAmiMessage> {
    const id = fields.find(([k]) => k.toLowerCase() === 'actionid')?.[1];
    const response = this.waitFor((m) => m[0]?.[0] === 'Response' && value(m, 'ActionID') === id);
    this.write(`${fields.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    return response;
  }

  /** Resolves with the first message, received before or after, that `pred` accepts. */
  waitFor(pred: (m: RawAmiMessage) => boolean): Promise<RawAmiMessage> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** First value of `key` in a message. */
export function value(m: RawAmiMessage, key: string): string | undefined {
  return m.find(([k]) => k === key)?.[1];
}

/** An event message named `name`. */
export function isEvent(name: string): (m: RawAmiMessage) => boolean {
  return (m) => m[0]?.[0] === 'Event' && m[0][1] === name;
}
