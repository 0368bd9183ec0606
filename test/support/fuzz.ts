/**
 * Seeded generators of hostile input for the fuzz tests: broken, truncated, oversized and
 * type-confused ARI event frames and AMI frames. Everything comes from one PRNG, so a failure is
 * replayed by running the test again with `FUZZ_SEED=<the seed it printed>`.
 */

import { channel, envelope } from './ari-fixture.js';

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export class Rng {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** Printable ASCII, with some control characters and non-ASCII thrown in. */
  text(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      out +=
        r < 0.9
          ? String.fromCharCode(this.int(32, 126))
          : r < 0.95
            ? String.fromCharCode(this.int(0, 31))
            : this.pick(['é', '€', '😀', '\u0000', '\uffff', '\ud800', 'ß', '中']);
    }
    return out;
  }
}

/** The seed of this run: `FUZZ_SEED` from the environment, or a fresh random one. */
export function fuzzSeed(): number {
  const fromEnv = process.env.FUZZ_SEED;
  if (fromEnv !== undefined && fromEnv !== '') return Number(fromEnv) >>> 0;
  return Math.floor(Math.random() * 2 ** 32);
}

/** Records uncaught exceptions and unhandled rejections while installed. */
export function processFaults(): { faults: unknown[]; uninstall: () => void } {
  const faults: unknown[] = [];
  const onUncaught = (error: unknown) => faults.push(error);
  const onRejection = (reason: unknown) => faults.push(reason);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  return {
    faults,
    uninstall: () => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    },
  };
}

// ------------------------------------------------------------------------------------------ ARI

/** Known event types, with a valid instance of each (ids chosen by the caller). */
function validEvent(rng: Rng, type: string, id: string): Record<string, unknown> {
  const ch = channel(id);
  const bridge = { id: `b-${id}`, technology: 'simple_bridge', bridge_type: 'mixing', channels: [id] };
  const playback = { id: `p-${id}`, media_uri: 'sound:x', target_uri: `channel:${id}`, state: 'done' };
  const recording = { name: `r-${id}`, format: 'wav', target_uri: `channel:${id}`, state: 'done' };
  const endpoint = { technology: 'PJSIP', resource: 'alice', state: 'online', channel_ids: [] };
  const base = envelope(type);
  switch (type) {
    case 'StasisStart':
      return { ...base, args: [rng.pick(['call', 'outbound', 'x'])], channel: ch };
    case 'ChannelDtmfReceived':
      return { ...base, digit: rng.pick(['1', '#', '*', 'A']), duration_ms: 100, channel: ch };
    case 'ChannelDestroyed':
      return { ...base, cause: 16, cause_txt: 'Normal Clearing', channel: ch };
    case 'ChannelVarset':
      return { ...base, variable: 'X', value: 'y', channel: ch };
    case 'ChannelTalkingFinished':
      return { ...base, duration: 120, channel: ch };
    case 'ChannelEnteredBridge':
    case 'ChannelLeftBridge':
      return { ...base, bridge, channel: ch };
    case 'ChannelUserevent':
      return { ...base, eventname: 'garbage', userevent: { a: 1 }, channel: ch };
    case 'Dial':
      return { ...base, peer: ch, dialstatus: 'RINGING' };
    case 'PlaybackStarted':
    case 'PlaybackFinished':
      return { ...base, playback };
    case 'RecordingFinished':
    case 'RecordingFailed':
      return { ...base, recording };
    case 'BridgeDestroyed':
      return { ...base, bridge };
    case 'TextMessageReceived':
      return {
        ...base,
        message: { from: '"x" <sip:x@127.0.0.1>', to: 'pjsip:999@127.0.0.1', body: 'hi' },
        endpoint,
      };
    case 'EndpointStateChange':
      return { ...base, endpoint };
    default:
      return { ...base, channel: ch };
  }
}

const KNOWN_TYPES = [
  'StasisStart',
  'StasisEnd',
  'ChannelStateChange',
  'ChannelDtmfReceived',
  'ChannelHangupRequest',
  'ChannelDestroyed',
  'ChannelVarset',
  'ChannelTalkingStarted',
  'ChannelTalkingFinished',
  'ChannelEnteredBridge',
  'ChannelLeftBridge',
  'ChannelUserevent',
  'Dial',
  'PlaybackStarted',
  'PlaybackFinished',
  'RecordingFinished',
  'RecordingFailed',
  'BridgeDestroyed',
  'TextMessageReceived',
  'EndpointStateChange',
];

/** A value of some JSON type, often the wrong one for where it is put. */
function wrongValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, 9)) {
    case 0:
      return null;
    case 1:
      return rng.int(-1e9, 1e9);
    case 2:
      return rng.text(rng.int(0, 20));
    case 3:
      return rng.chance(0.5);
    case 4:
      return [];
    case 5:
      return {};
    case 6:
      return depth < 3 ? [wrongValue(rng, depth + 1), wrongValue(rng, depth + 1)] : 0;
    case 7:
      return depth < 3 ? { id: wrongValue(rng, depth + 1), name: wrongValue(rng, depth + 1) } : '';
    case 8:
      return rng.pick([1e308, -0, 0.5, Number.MAX_SAFE_INTEGER + 2]);
    default:
      return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } };
  }
}

/** Nested arrays or objects `depth` levels deep, as JSON text. */
function deepJson(rng: Rng, depth: number): string {
  return rng.chance(0.5)
    ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Sets `path` (dot-separated) of `obj` to `value`, or deletes it when value is undefined. */
function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let node: Record<string, unknown> = obj;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) return;
    const copy = Array.isArray(next) ? [...next] : { ...(next as Record<string, unknown>) };
    node[key] = copy;
    node = copy as Record<string, unknown>;
  }
  const last = path.at(-1)!;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/** Paths type-confusion is applied to: the envelope, the required fields, and fields read inside them. */
const CONFUSABLE_PATHS = [
  ['type'],
  ['timestamp'],
  ['application'],
  ['asterisk_id'],
  ['channel'],
  ['channel', 'id'],
  ['channel', 'name'],
  ['channel', 'state'],
  ['channel', 'caller'],
  ['channel', 'caller', 'number'],
  ['channel', 'dialplan'],
  ['channel', 'dialplan', 'exten'],
  ['args'],
  ['digit'],
  ['duration_ms'],
  ['cause'],
  ['playback'],
  ['playback', 'id'],
  ['playback', 'target_uri'],
  ['recording', 'name'],
  ['recording', 'target_uri'],
  ['bridge', 'id'],
  ['message'],
  ['message', 'from'],
  ['message', 'body'],
  ['endpoint', 'resource'],
  ['peer'],
  ['userevent'],
];

/** One ARI frame: text (JSON or not) or binary. */
export type AriFrame = { kind: 'text'; text: string } | { kind: 'binary'; data: Buffer };

/**
 * A hostile frame for the ARI events websocket. `bigEvery` makes every n-th frame (on average) a
 * huge one (0.25–2 MB); `deepEvery` one nested thousands of levels deep.
 */
export function hostileAriFrame(rng: Rng, options: { bigEvery?: number; deepEvery?: number } = {}): AriFrame {
  const id = `fz-${rng.int(0, 1e9)}`;
  if (options.bigEvery && rng.chance(1 / options.bigEvery)) {
    const huge = rng.text(rng.int(256 * 1024, 2 * 1024 * 1024));
    const event = validEvent(rng, rng.pick(KNOWN_TYPES), id);
    setPath(event, rng.pick([['channel', 'name'], ['application'], ['extra'], ['type']]), huge);
    return { kind: 'text', text: JSON.stringify(event) };
  }
  if (options.deepEvery && rng.chance(1 / options.deepEvery)) {
    const deep = deepJson(rng, rng.int(1000, 50_000));
    const event = validEvent(rng, rng.pick(KNOWN_TYPES), id);
    const text = JSON.stringify({ ...event, nested: 0 }).replace('"nested":0', `"nested":${deep}`);
    return { kind: 'text', text: rng.chance(0.2) ? deep : text };
  }
  switch (rng.int(0, 10)) {
    case 0:
      return { kind: 'binary', data: rng.bytes(rng.int(0, 2000)) };
    case 1:
      // Not JSON at all.
      return { kind: 'text', text: rng.bytes(rng.int(0, 500)).toString('utf8') };
    case 2: {
      // Valid JSON cut short.
      const full = JSON.stringify(validEvent(rng, rng.pick(KNOWN_TYPES), id));
      return { kind: 'text', text: full.slice(0, rng.int(0, full.length - 1)) };
    }
    case 3:
      return { kind: 'text', text: JSON.stringify(wrongValue(rng)) };
    case 4: {
      // An unknown event type, valid envelope.
      return {
        kind: 'text',
        text: JSON.stringify({
          ...envelope(`Fuzz${rng.int(0, 99)}`),
          channel: wrongValue(rng),
          x: wrongValue(rng),
        }),
      };
    }
    case 5:
    case 6:
    case 7: {
      // A known type with one field of the wrong type, or missing.
      const event = validEvent(rng, rng.pick(KNOWN_TYPES), id);
      setPath(event, rng.pick(CONFUSABLE_PATHS), rng.chance(0.3) ? undefined : wrongValue(rng));
      return { kind: 'text', text: JSON.stringify(event) };
    }
    case 8: {
      // A valid event with garbage inside: extra fields, odd keys, an unknown channel.
      const event = validEvent(rng, rng.pick(KNOWN_TYPES), id);
      return {
        kind: 'text',
        text: JSON.stringify({ ...event, [rng.text(5)]: wrongValue(rng), toString: 1, valueOf: 'x' }).replace(
          '"valueOf"',
          '"__proto__":{"polluted":1},"valueOf"',
        ),
      };
    }
    case 9:
      return {
        kind: 'text',
        text: rng.pick(['', ' ', 'null', '{}', '[]', '{"type":""}', '"StasisStart"', '\u0000']),
      };
    default: {
      // JSON with a lone surrogate, control characters and a BOM.
      const event = validEvent(rng, rng.pick(KNOWN_TYPES), id);
      return { kind: 'text', text: `\ufeff${JSON.stringify(event).replace('"Alice"', '"\\ud800\\u0000"')}` };
    }
  }
}

// ------------------------------------------------------------------------------------------ AMI

const AMI_EVENT_NAMES = ['Newchannel', 'Hangup', 'VarSet', 'OriginateResponse', 'DTMFEnd', 'Fuzz', ''];

/**
 * Hostile AMI bytes: never the `Shutdown` or `FullyBooted` events (they steer reconnection) and
 * never an ActionID the client issued (its ids carry a random prefix). The caller ends each with a
 * blank line before a message it needs to arrive: AMI has no other way to resynchronise.
 */
export function hostileAmiFrame(rng: Rng, options: { hugeEvery?: number } = {}): Buffer {
  if (options.hugeEvery && rng.chance(1 / options.hugeEvery)) {
    return rng.chance(0.5)
      ? // A line over the 1 MiB line limit.
        Buffer.from(`Event: Big\r\nValue: ${'v'.repeat(1024 * 1024 + rng.int(1, 1000))}\r\n`)
      : // More lines than a message may hold.
        Buffer.from(`Event: Many\r\n${'k:\r\n'.repeat(100_001)}`);
  }
  switch (rng.int(0, 9)) {
    case 0:
      return rng.bytes(rng.int(1, 2000));
    case 1:
      // A message without its blank line, cut at a random point.
      return Buffer.from(
        `Event: ${rng.pick(AMI_EVENT_NAMES)}\r\nChannel: PJSIP/x\r\nUniqueid: ${rng.int(0, 1e6)}\r\n`.slice(
          0,
          rng.int(1, 60),
        ),
      );
    case 2:
      // A response to an action nobody sent.
      return Buffer.from(
        `Response: ${rng.pick(['Success', 'Error', 'Follows', 'Goodbye'])}\r\n` +
          `${rng.chance(0.7) ? `ActionID: ${rng.text(rng.int(0, 40)).replace(/[\r\n]/g, '')}\r\n` : ''}` +
          `Message: ${rng.text(20).replace(/[\r\n]/g, '')}\r\n\r\n`,
      );
    case 3: {
      // Many keys.
      const n = rng.int(100, 5000);
      let text = 'Event: Keys\r\n';
      for (let i = 0; i < n; i++) text += `K${i % 50}: ${i}\r\n`;
      return Buffer.from(`${text}\r\n`);
    }
    case 4:
      // An event without a name, or a message with neither Event nor Response.
      return Buffer.from(rng.chance(0.5) ? 'Event:\r\nChannel: x\r\n\r\n' : 'Channel: x\r\nState: y\r\n\r\n');
    case 5:
      // A known event with odd fields.
      return Buffer.from(
        `Event: ${rng.pick(AMI_EVENT_NAMES)}\r\n:no key\r\nno colon\r\n ${rng.text(10).replace(/[\r\n]/g, '')}: x\r\n` +
          `ActionID: fz-${rng.int(0, 1e6)}\r\nResponse: Failure\r\n\r\n`,
      );
    case 6:
      // Lone CRs and LFs, NULs, blank lines.
      return Buffer.from(
        rng.pick(['\r', '\n', '\n\n\n', '\r\r\n', '\u0000\r\n', '\r\n\r\n\r\n', 'A: \rB\n\r\n']),
      );
    case 7:
      // Invalid UTF-8 and a sequence cut in the middle.
      return Buffer.concat([
        Buffer.from('Event: Utf\r\nV: '),
        Buffer.from([0xe2, 0x82]),
        Buffer.from([0xff, 0xfe]),
      ]);
    case 8:
      // A long but allowed line.
      return Buffer.from(`Event: Long\r\nV: ${'x'.repeat(rng.int(1000, 100_000))}\r\n\r\n`);
    default:
      return Buffer.from(`${rng.text(rng.int(0, 200))}\r\n`);
  }
}

/** Cuts `data` into pieces at random points (some of one byte). */
export function randomSplits(rng: Rng, data: Buffer, maxPieces = 8): Buffer[] {
  const cuts = new Set<number>();
  const n = rng.int(0, maxPieces - 1);
  for (let i = 0; i < n && data.length > 1; i++) cuts.add(rng.int(1, data.length - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), data.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < points.length; i++) out.push(data.subarray(points[i]!, points[i + 1]!));
  return out;
}
