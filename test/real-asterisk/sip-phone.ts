import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMulaw } from '../../src/media/g711.js';
import { decodeRtp, encodeRtp } from '../../src/media/rtp-packet.js';
import { within } from '../support/within.js';

/**
 * A tiny SIP user agent over UDP for the real-Asterisk tests: one phone (an endpoint such as
 * `bob`) on one port. It does just what the tests need, the way a desk phone would:
 *
 * - texts: sends out-of-dialog MESSAGE requests (retransmitted until a final response) and
 *   answers every MESSAGE it receives with 200 OK, keeping its raw request (Request-URI, From,
 *   To, Content-Type and the body bytes) for the test to check;
 * - calls: answers an INVITE with 200 OK and a PCMU SDP answer (or 486 Busy Here, or keeps
 *   ringing until CANCEL), answers re-INVITE / UPDATE / BYE / OPTIONS / INFO, sends PCMU silence
 *   every 20 ms while the call is up, counts the audio it receives, and presses keys as RFC 4733
 *   telephone-events in that same RTP stream.
 *
 * Asterisk is the only peer (127.0.0.1:5060 unless told otherwise). No authentication, no TCP,
 * no forking: this is a test fixture, not a SIP stack.
 */

/** A parsed SIP request or response. */
export interface SipMessage {
  /** Request method (`INVITE`), or undefined for a response. */
  method?: string;
  /** Request-URI of a request. */
  uri?: string;
  /** Status code of a response. */
  status?: number;
  reason?: string;
  /** Header lines in order, names as sent. */
  headers: [name: string, value: string][];
  /** The body bytes (Content-Length of them). */
  body: Buffer;
}

/** A MESSAGE the phone received (and answered with 200 OK). */
export interface ReceivedText {
  requestUri: string;
  from: string;
  to: string;
  /** The Content-Type header, '' when absent. */
  contentType: string;
  /** The body exactly as received. */
  bytes: Buffer;
  /** The body decoded as UTF-8. */
  body: string;
  /** Whether it came inside a call (an in-dialog MESSAGE, e.g. from AMI SendText). */
  inDialog: boolean;
  message: SipMessage;
}

/** What the phone does with a new INVITE. */
export type InviteBehaviour = 'answer' | 'busy' | 'ring';

/** Options of {@link SipPhone.open}. */
export interface SipPhoneOptions {
  /** The SIP user (= the PJSIP endpoint name that identifies us by From user). */
  user: string;
  /** Display name put in From. Default: none. */
  displayName?: string;
  /** Our SIP port; Asterisk's static contact for the endpoint points here. */
  port: number;
  /** Asterisk. Default 127.0.0.1:5060. */
  asterisk?: { host: string; port: number };
  /**
   * How long to keep trying when the port is in use (another test file holds the same phone):
   * test files that share a phone then take turns. Default 120 s.
   */
  bindTimeoutMs?: number;
}

const COMPACT: Record<string, string> = {
  v: 'via',
  f: 'from',
  t: 'to',
  i: 'call-id',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
  k: 'supported',
};

function canonical(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

/** First value of a header (compact forms understood), '' when absent. */
export function header(msg: SipMessage, name: string): string {
  const want = canonical(name);
  return msg.headers.find(([n]) => canonical(n) === want)?.[1] ?? '';
}

function allHeaders(msg: SipMessage, name: string): string[] {
  const want = canonical(name);
  return msg.headers.filter(([n]) => canonical(n) === want).map(([, v]) => v);
}

/** Parses one datagram; undefined for anything that is not SIP (e.g. a CRLF keep-alive). */
export function parseSip(datagram: Buffer): SipMessage | undefined {
  const split = datagram.indexOf('\r\n\r\n');
  if (split < 0) return undefined;
  const lines = datagram.subarray(0, split).toString('utf8').split('\r\n');
  const start = lines.shift() ?? '';
  const headers: [string, string][] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1]![1] += ` ${line.trim()}`; // folded line
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  const msg: SipMessage = { headers, body: Buffer.alloc(0) };
  const lengthText = header(msg, 'content-length');
  const rest = datagram.subarray(split + 4);
  msg.body = Buffer.from(lengthText === '' ? rest : rest.subarray(0, Number(lengthText)));
  const response = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(start);
  if (response) {
    msg.status = Number(response[1]);
    msg.reason = response[2] ?? '';
    return msg;
  }
  const request = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(start);
  if (!request) return undefined;
  msg.method = request[1]!;
  msg.uri = request[2]!;
  return msg;
}

/** The `<...>` URI of a From/To/Contact value, or the value itself without parameters. */
export function uriOf(value: string): string {
  const m = /<([^>]*)>/.exec(value);
  return m ? m[1]! : value.split(';')[0]!.trim();
}

/** The user part of a SIP URI or name-addr. */
export function userOf(value: string): string {
  return /^sips?:([^@;>]*)@/.exec(uriOf(value))?.[1] ?? '';
}

/** The display name of a name-addr, unquoted; '' when absent. */
export function displayNameOf(value: string): string {
  const open = value.indexOf('<');
  if (open <= 0) return '';
  return value
    .slice(0, open)
    .trim()
    .replace(/^"(.*)"$/, '$1');
}

function token(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

function tagOf(value: string): string | undefined {
  return /;\s*tag=([^;\s]+)/i.exec(value)?.[1];
}

function branchOf(via: string): string {
  return /;\s*branch=([^;\s]+)/i.exec(via)?.[1] ?? '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** In-order consumption of things that arrive over time (texts, calls). */
class Arrivals<T> {
  readonly all: T[] = [];
  private readonly consumed = new Set<T>();
  private waiters: { match: (t: T) => boolean; resolve: (t: T) => void }[] = [];

  push(item: T): void {
    this.all.push(item);
    const i = this.waiters.findIndex((w) => w.match(item));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      this.consumed.add(item);
      w!.resolve(item);
    }
  }

  next(match: (t: T) => boolean, ms: number, what: string): Promise<T> {
    const found = this.all.find((t) => !this.consumed.has(t) && match(t));
    if (found) {
      this.consumed.add(found);
      return Promise.resolve(found);
    }
    const waiter = { match, resolve: (_: T) => {} };
    const p = new Promise<T>((resolve) => {
      waiter.resolve = resolve;
    });
    this.waiters.push(waiter);
    return within(p, ms, what).catch((error: unknown) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw error;
    });
  }

  /** Marks everything received so far as seen. */
  skipAll(): void {
    for (const t of this.all) this.consumed.add(t);
  }
}

const DTMF_EVENTS = '0123456789*#ABCD';

/** One call the phone received. */
export class PhoneCall {
  readonly invite: SipMessage;
  readonly callId: string;
  /** The caller as the INVITE's From shows it (caller ID). */
  readonly from: string;
  readonly to: string;
  /** 'answered', 'busy', 'cancelled' (CANCEL while ringing) once decided. */
  outcome?: 'answered' | 'busy' | 'cancelled';
  /** Re-INVITEs and UPDATEs answered. */
  reinvites = 0;
  /** RTP packets received, and how many of them carried audible audio (not silence). */
  rtpPackets = 0;
  audiblePackets = 0;
  /** Who ended it. */
  readonly ended: Promise<'remote-bye' | 'local-bye' | 'cancelled' | 'busy'>;

  private readonly phone: SipPhone;
  private readonly localTag = token();
  private remoteTarget: string;
  private remoteRtp?: { address: string; port: number };
  private dtmfPayloadType = 101;
  private rtp?: Socket;
  private rtpTimer?: NodeJS.Timeout;
  private seq = Math.floor(Math.random() * 30000);
  private timestamp = Math.floor(Math.random() * 1e6);
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private pendingDtmf?: { event: number; remaining: number; duration: number; start: number };
  private readonly dtmfDone: (() => void)[] = [];
  private sdpVersion = 1;
  private localCSeq = 1;
  private finish!: (how: 'remote-bye' | 'local-bye' | 'cancelled' | 'busy') => void;
  private isOver = false;

  /** @internal */
  constructor(phone: SipPhone, invite: SipMessage) {
    this.phone = phone;
    this.invite = invite;
    this.callId = header(invite, 'call-id');
    this.from = header(invite, 'from');
    this.to = header(invite, 'to');
    this.remoteTarget = uriOf(header(invite, 'contact')) || uriOf(this.from);
    this.ended = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.readOffer(invite.body.toString('utf8'));
  }

  /** Caller ID number (user part of From) and name. */
  get callerId(): { number: string; name: string } {
    return { number: userOf(this.from), name: displayNameOf(this.from) };
  }

  /** Whether the call is still up (or ringing). */
  get active(): boolean {
    return !this.isOver;
  }

  /**
   * Presses `digits` as RFC 4733 telephone-events: each `durationMs` long (in 20 ms packets,
   * the last one sent three times with the End bit), `gapMs` apart.
   */
  async press(digits: string, durationMs = 160, gapMs = 120): Promise<void> {
    for (const digit of digits) {
      const event = DTMF_EVENTS.indexOf(digit.toUpperCase());
      if (event < 0) throw new Error(`not a DTMF digit: ${digit}`);
      if (!this.rtp || this.isOver) throw new Error('the call has no media');
      await new Promise<void>((resolve) => {
        this.pendingDtmf = {
          event,
          remaining: Math.max(1, Math.round(durationMs / 20)),
          duration: 0,
          start: this.timestamp,
        };
        this.dtmfDone.push(resolve);
      });
      await sleep(gapMs);
    }
  }

  /** Hangs up with BYE and waits for its final response. */
  async hangup(): Promise<void> {
    if (this.isOver) return;
    this.stopMedia();
    const request = [
      `BYE ${this.remoteTarget} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.phone.host}:${this.phone.port};rport;branch=z9hG4bK${token()}`,
      'Max-Forwards: 70',
      `From: ${this.to.includes('tag=') ? this.to : `${this.to};tag=${this.localTag}`}`,
      `To: ${this.from}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${++this.localCSeq} BYE`,
      'Content-Length: 0',
    ];
    this.end('local-bye');
    await this.phone.request(request, Buffer.alloc(0));
  }

  /** @internal An in-dialog request or a retransmission for this call. */
  handle(msg: SipMessage): void {
    const method = msg.method!;
    if (method === 'ACK') return;
    if (method === 'BYE') {
      this.phone.respond(msg, 200, 'OK', { toTag: this.localTag });
      this.end('remote-bye');
      return;
    }
    if (method === 'CANCEL') {
      this.phone.respond(msg, 200, 'OK', { toTag: this.localTag });
      if (!this.outcome) {
        this.outcome = 'cancelled';
        this.phone.respond(this.invite, 487, 'Request Terminated', { toTag: this.localTag });
        this.end('cancelled');
      }
      return;
    }
    if (method === 'INVITE' || method === 'UPDATE') {
      this.reinvites++;
      if (msg.body.length > 0) this.readOffer(msg.body.toString('utf8'));
      this.phone.respond(msg, 200, 'OK', {
        toTag: this.localTag,
        contact: true,
        sdp: msg.body.length > 0 || method === 'INVITE' ? this.answerSdp() : undefined,
      });
      return;
    }
    if (method === 'MESSAGE') {
      this.phone.respond(msg, 200, 'OK', { toTag: this.localTag });
      this.phone.recordText(msg, true);
      return;
    }
    this.phone.respond(msg, 200, 'OK', { toTag: this.localTag });
  }

  /** @internal Decides what to do with the INVITE. */
  async start(behaviour: InviteBehaviour, answerAfterMs: number): Promise<void> {
    this.phone.respond(this.invite, 100, 'Trying');
    if (behaviour === 'busy') {
      this.outcome = 'busy';
      this.phone.respond(this.invite, 486, 'Busy Here', { toTag: this.localTag });
      this.end('busy');
      return;
    }
    this.phone.respond(this.invite, 180, 'Ringing', { toTag: this.localTag, contact: true });
    if (behaviour === 'ring') return;
    await sleep(answerAfterMs);
    if (this.outcome) return; // cancelled meanwhile
    this.outcome = 'answered';
    await this.startMedia();
    this.phone.respond(this.invite, 200, 'OK', {
      toTag: this.localTag,
      contact: true,
      sdp: this.answerSdp(),
    });
  }

  private readOffer(sdp: string): void {
    const c = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
    const m = /^m=audio (\d+) /m.exec(sdp)?.[1];
    if (c && m) this.remoteRtp = { address: c, port: Number(m) };
    const te = /^a=rtpmap:(\d+) telephone-event\/8000/im.exec(sdp)?.[1];
    if (te) this.dtmfPayloadType = Number(te);
  }

  private answerSdp(): string {
    const port = this.rtp ? this.rtp.address().port : 9;
    const id = this.localTag.slice(0, 8);
    return [
      'v=0',
      `o=${this.phone.user} ${Number.parseInt(id, 16)} ${this.sdpVersion++} IN IP4 ${this.phone.host}`,
      's=-',
      `c=IN IP4 ${this.phone.host}`,
      't=0 0',
      `m=audio ${port} RTP/AVP 0 ${this.dtmfPayloadType}`,
      'a=rtpmap:0 PCMU/8000',
      `a=rtpmap:${this.dtmfPayloadType} telephone-event/8000`,
      `a=fmtp:${this.dtmfPayloadType} 0-16`,
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  private async startMedia(): Promise<void> {
    const rtp = createSocket('udp4');
    rtp.on('message', (data) => {
      const packet = decodeRtp(data);
      if (!packet) return;
      this.rtpPackets++;
      if (packet.payloadType === 0) {
        const pcm = decodeMulaw(packet.payload);
        let peak = 0;
        for (const s of pcm) peak = Math.max(peak, Math.abs(s));
        if (peak > 500) this.audiblePackets++;
      }
    });
    await new Promise<void>((resolve) => rtp.bind(0, this.phone.host, () => resolve()));
    this.rtp = rtp;
    // A phone sends audio all the time; Asterisk's strict RTP learns our address from it.
    this.rtpTimer = setInterval(() => this.sendFrame(), 20);
  }

  private sendFrame(): void {
    if (!this.rtp || !this.remoteRtp || this.outcome !== 'answered') return;
    const dtmf = this.pendingDtmf;
    let packet: Buffer;
    if (dtmf) {
      dtmf.duration += 160;
      const last = dtmf.remaining <= 1;
      const payload = Buffer.from([dtmf.event, (last ? 0x80 : 0) | 10, 0, 0]);
      payload.writeUInt16BE(dtmf.duration, 2);
      packet = encodeRtp({
        payloadType: this.dtmfPayloadType,
        marker: dtmf.duration === 160,
        sequenceNumber: this.seq++ & 0xffff,
        timestamp: dtmf.start,
        ssrc: this.ssrc,
        csrc: [],
        payload,
      });
      if (last) {
        // The end packet goes three times (RFC 4733 §2.5.1.4), all with the same sequence number.
        for (let i = 0; i < 2; i++) this.rtp.send(packet, this.remoteRtp.port, this.remoteRtp.address);
        this.pendingDtmf = undefined;
        this.timestamp = (dtmf.start + dtmf.duration) >>> 0;
        this.dtmfDone.shift()?.();
      } else {
        dtmf.remaining--;
      }
    } else {
      packet = encodeRtp({
        payloadType: 0,
        marker: false,
        sequenceNumber: this.seq++ & 0xffff,
        timestamp: this.timestamp,
        ssrc: this.ssrc,
        csrc: [],
        payload: Buffer.alloc(160, 0xff),
      });
      this.timestamp = (this.timestamp + 160) >>> 0;
    }
    this.rtp.send(packet, this.remoteRtp.port, this.remoteRtp.address);
  }

  private stopMedia(): void {
    if (this.rtpTimer) clearInterval(this.rtpTimer);
    this.rtpTimer = undefined;
    this.rtp?.close();
    this.rtp = undefined;
    for (const done of this.dtmfDone.splice(0)) done();
  }

  /** @internal */
  end(how: 'remote-bye' | 'local-bye' | 'cancelled' | 'busy'): void {
    if (this.isOver) return;
    this.isOver = true;
    this.stopMedia();
    this.finish(how);
  }
}

/** One SIP phone on one UDP port. */
export class SipPhone {
  readonly user: string;
  readonly port: number;
  readonly host = '127.0.0.1';
  /** What a new INVITE gets. Default 'answer'. */
  onInvite: InviteBehaviour = 'answer';
  /** How long an answered call rings first. */
  answerAfterMs = 200;
  /** Every request and response received, for debugging a failing test. */
  readonly log: SipMessage[] = [];

  private readonly socket: Socket;
  private readonly asterisk: { host: string; port: number };
  private readonly displayName: string;
  private readonly texts = new Arrivals<ReceivedText>();
  private readonly calls = new Arrivals<PhoneCall>();
  private readonly dialogs = new Map<string, PhoneCall>();
  /** Final responses to our own requests, by Via branch. */
  private readonly transactions = new Map<string, (msg: SipMessage) => void>();
  /** Last response we sent per request (by branch + method), re-sent on a retransmission. */
  private readonly sentResponses = new Map<string, Buffer[]>();

  private constructor(socket: Socket, options: SipPhoneOptions) {
    this.socket = socket;
    this.user = options.user;
    this.port = options.port;
    this.displayName = options.displayName ?? '';
    this.asterisk = options.asterisk ?? { host: '127.0.0.1', port: 5060 };
    socket.on('message', (data) => this.receive(data));
  }

  /** Binds the phone's port (waiting while another test file holds it) and starts answering. */
  static async open(options: SipPhoneOptions): Promise<SipPhone> {
    const deadline = Date.now() + (options.bindTimeoutMs ?? 120_000);
    for (;;) {
      const socket = createSocket('udp4');
      const bound = await new Promise<Error | undefined>((resolve) => {
        socket.once('error', resolve);
        socket.bind(options.port, '127.0.0.1', () => {
          socket.off('error', resolve);
          resolve(undefined);
        });
      });
      if (!bound) return new SipPhone(socket, options);
      socket.close();
      if ((bound as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw bound;
      await sleep(250);
    }
  }

  /** Every MESSAGE received so far. */
  get receivedTexts(): readonly ReceivedText[] {
    return this.texts.all;
  }

  /** The next MESSAGE not returned before (waits up to `ms`). */
  nextText(ms = 10_000, match: (t: ReceivedText) => boolean = () => true): Promise<ReceivedText> {
    return this.texts.next(match, ms, `a MESSAGE to ${this.user}`);
  }

  /** Forgets the texts received so far (they are never returned by nextText). */
  skipTexts(): void {
    this.texts.skipAll();
  }

  /** The next INVITE not returned before. */
  nextCall(ms = 10_000): Promise<PhoneCall> {
    return this.calls.next(() => true, ms, `an INVITE to ${this.user}`);
  }

  /**
   * Sends an out-of-dialog MESSAGE to `to` (a number or user) through Asterisk, as `user`. Resolves
   * with the final response (Asterisk answers 202 Accepted, or 404 when nobody takes texts there).
   */
  async sendText(
    to: string,
    body: string | Buffer,
    options: { contentType?: string } = {},
  ): Promise<SipMessage> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const from = this.displayName
      ? `"${this.displayName}" <sip:${this.user}@${this.host}>`
      : `<sip:${this.user}@${this.host}>`;
    return this.request(
      [
        `MESSAGE sip:${to}@${this.asterisk.host}:${this.asterisk.port} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.host}:${this.port};rport;branch=z9hG4bK${token()}`,
        'Max-Forwards: 70',
        `From: ${from};tag=${token()}`,
        `To: <sip:${to}@${this.asterisk.host}>`,
        `Call-ID: ${token(10)}@${this.host}`,
        'CSeq: 1 MESSAGE',
        `Content-Type: ${options.contentType ?? 'text/plain;charset=UTF-8'}`,
        'User-Agent: asteramisk-test-phone',
        `Content-Length: ${bytes.length}`,
      ],
      bytes,
    );
  }

  /** Stops answering and frees the port. Calls still up are left to Asterisk's timers. */
  async close(): Promise<void> {
    for (const call of this.dialogs.values()) call.end('local-bye');
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  /**
   * @internal Sends a request (header lines without Content-Length handling beyond what is given)
   * and resolves with its final response, retransmitting over UDP (500 ms doubling to 4 s, 32 s).
   */
  async request(lines: string[], body: Buffer): Promise<SipMessage> {
    const branch = branchOf(lines.find((l) => l.startsWith('Via:')) ?? '');
    const datagram = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body]);
    const final = new Promise<SipMessage>((resolve) => this.transactions.set(branch, resolve));
    let done = false;
    void final.then(() => {
      done = true;
    });
    void (async () => {
      let interval = 500;
      for (
        let elapsed = 0;
        !done && elapsed < 32_000;
        elapsed += interval, interval = Math.min(interval * 2, 4000)
      ) {
        this.socket.send(datagram, this.asterisk.port, this.asterisk.host);
        await Promise.race([final, sleep(interval)]);
      }
    })();
    try {
      return await within(final, 33_000, `the response to ${lines[0]}`);
    } finally {
      this.transactions.delete(branch);
    }
  }

  /** @internal Answers `req`: Via/From/To/Call-ID/CSeq copied, our tag added to To. */
  respond(
    req: SipMessage,
    status: number,
    reason: string,
    options: { toTag?: string; contact?: boolean; sdp?: string } = {},
  ): void {
    let to = header(req, 'to');
    if (options.toTag && status > 100 && !tagOf(to)) to = `${to};tag=${options.toTag}`;
    const body = Buffer.from(options.sdp ?? '', 'utf8');
    const lines = [
      `SIP/2.0 ${status} ${reason}`,
      ...allHeaders(req, 'via').map((v) => `Via: ${v}`),
      `From: ${header(req, 'from')}`,
      `To: ${to}`,
      `Call-ID: ${header(req, 'call-id')}`,
      `CSeq: ${header(req, 'cseq')}`,
      ...(options.contact ? [`Contact: <sip:${this.user}@${this.host}:${this.port}>`] : []),
      ...(req.method === 'INVITE' && status === 200
        ? ['Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, UPDATE, INFO']
        : []),
      ...(options.sdp ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${body.length}`,
    ];
    const datagram = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body]);
    const key = `${branchOf(allHeaders(req, 'via')[0] ?? '')} ${req.method}`;
    const sent = this.sentResponses.get(key) ?? [];
    sent.push(datagram);
    this.sentResponses.set(key, sent);
    this.socket.send(datagram, this.asterisk.port, this.asterisk.host);
    if (req.method === 'INVITE' && status === 200) void this.retransmitOk(req, datagram);
  }

  /** @internal */
  recordText(msg: SipMessage, inDialog: boolean): void {
    this.texts.push({
      requestUri: msg.uri ?? '',
      from: header(msg, 'from'),
      to: header(msg, 'to'),
      contentType: header(msg, 'content-type'),
      bytes: msg.body,
      body: msg.body.toString('utf8'),
      inDialog,
      message: msg,
    });
  }

  /** A 2xx to INVITE goes again until its ACK arrives (RFC 3261 §13.3.1.4). */
  private async retransmitOk(invite: SipMessage, datagram: Buffer): Promise<void> {
    const callId = header(invite, 'call-id');
    const cseq = header(invite, 'cseq');
    let acked = false;
    const onAck = (data: Buffer) => {
      const msg = parseSip(data);
      if (
        msg?.method === 'ACK' &&
        header(msg, 'call-id') === callId &&
        header(msg, 'cseq').split(' ')[0] === cseq.split(' ')[0]
      )
        acked = true;
    };
    this.socket.on('message', onAck);
    try {
      for (
        let interval = 500, total = 0;
        total < 32_000;
        total += interval, interval = Math.min(interval * 2, 4000)
      ) {
        await sleep(interval);
        if (acked) return;
        this.socket.send(datagram, this.asterisk.port, this.asterisk.host);
      }
    } catch {
      // socket closed
    } finally {
      this.socket.off('message', onAck);
    }
  }

  private receive(data: Buffer): void {
    const msg = parseSip(data);
    if (!msg) return;
    this.log.push(msg);
    if (msg.status !== undefined) {
      if (msg.status >= 200) this.transactions.get(branchOf(header(msg, 'via')))?.(msg);
      return;
    }
    const key = `${branchOf(allHeaders(msg, 'via')[0] ?? '')} ${msg.method}`;
    const already = this.sentResponses.get(key);
    if (already && msg.method !== 'ACK') {
      // A retransmission: send the same answer again.
      for (const d of already) this.socket.send(d, this.asterisk.port, this.asterisk.host);
      return;
    }
    const callId = header(msg, 'call-id');
    const dialog = this.dialogs.get(callId);
    if (dialog) {
      dialog.handle(msg);
      return;
    }
    switch (msg.method) {
      case 'INVITE': {
        const call = new PhoneCall(this, msg);
        this.dialogs.set(callId, call);
        void call.ended.then(() => setTimeout(() => this.dialogs.delete(callId), 35_000).unref());
        this.calls.push(call);
        void call.start(this.onInvite, this.answerAfterMs);
        return;
      }
      case 'MESSAGE':
        this.respond(msg, 200, 'OK', { toTag: token() });
        this.recordText(msg, false);
        return;
      case 'ACK':
        return;
      case 'BYE':
      case 'CANCEL':
        this.respond(msg, 481, 'Call/Transaction Does Not Exist', { toTag: token() });
        return;
      default:
        this.respond(msg, 200, 'OK', { toTag: token() });
    }
  }
}

/**
 * Takes the named phones (`bob`, `1001`) for this process until the returned function is called:
 * test files that use the same phone run their phone parts one after the other, even when a file
 * frees the port for a while (to let sipp answer on it). A lock left by a dead process is taken over.
 */
export async function holdPhones(names: readonly string[], timeoutMs = 180_000): Promise<() => void> {
  const dir = join(tmpdir(), 'asteramisk-real-phones');
  mkdirSync(dir, { recursive: true });
  const held: string[] = [];
  const release = () => {
    for (const file of held.splice(0)) rmSync(file, { force: true });
  };
  const deadline = Date.now() + timeoutMs;
  try {
    for (const name of [...names].sort()) {
      const file = join(dir, `${name}.lock`);
      for (;;) {
        try {
          writeFileSync(file, String(process.pid), { flag: 'wx' });
          held.push(file);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          let owner = '';
          try {
            owner = readFileSync(file, 'utf8');
          } catch {
            continue; // released meanwhile
          }
          if (owner !== '' && !isAlive(Number(owner))) {
            rmSync(file, { force: true });
            continue;
          }
          if (Date.now() > deadline) throw new Error(`phone ${name} is held by another test process`);
          await sleep(250);
        }
      }
    }
  } catch (error) {
    release();
    throw error;
  }
  return release;
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
