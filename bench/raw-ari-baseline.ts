/**
 * The anchor of bench/real-pbx-load.ts: a minimal hand-written ARI app, no library, doing per call
 * exactly the requests asteramisk's Server does for the same flow (8 per call):
 *
 *   StasisStart → POST answer → [POST bridges (mixing) → POST addChannel caller]
 *                             ∥ [POST channels/externalMedia (ulaw, RTP to our UDP socket), its StasisStart]
 *               → POST addChannel externalMedia → (optional prompt: µ-law RTP, 20 ms apart)
 *               → ChannelDtmfReceived "1", "2", "#" → DELETE caller → DELETE bridge → DELETE externalMedia
 *
 * Plain global fetch and a `ws` websocket; JSON.parse of every frame; one UDP socket per call; the
 * prompt is encoded to µ-law once, and one 20 ms interval sends a packet to every call that still
 * has prompt to hear. No retries, no reconnect, no validation: the floor, not a product.
 *
 * Run by bench/real-pbx-load.ts as a child process (IPC: ready / reset / report / close). Alone:
 *   ASTERISK_HOST=127.0.0.1 ASTERISK_ARI_USER=… ASTERISK_ARI_PASS=… npx tsx bench/raw-ari-baseline.ts \
 *     [--app raw-bench] [--prompt-ms 0]
 * (the dialplan must send calls to Stasis(<app>,call); the bench adds that extension over AMI).
 */

import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import WebSocket from 'ws';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const app = arg('app', 'raw-bench');
const promptMs = Number(arg('prompt-ms', '0'));
const host = process.env.ASTERISK_HOST ?? '127.0.0.1';
const port = Number(process.env.ASTERISK_ARI_PORT ?? 8088);
const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}/ari`;
const authorization = `Basic ${Buffer.from(`${process.env.ASTERISK_ARI_USER ?? ''}:${process.env.ASTERISK_ARI_PASS ?? ''}`).toString('base64')}`;

async function ari(method: string, path: string): Promise<unknown> {
  const response = await fetch(`${base}${path}`, { method, headers: { Authorization: authorization } });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** The prompt: a 400 Hz tone as µ-law, encoded once (160 bytes per 20 ms frame). */
function promptFrames(ms: number): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = 0; f < Math.ceil(ms / 20); f++) {
    const frame = Buffer.alloc(160);
    for (let i = 0; i < 160; i++) {
      const n = f * 160 + i;
      frame[i] = linearToUlaw(Math.round(8000 * Math.sin((2 * Math.PI * 400 * n) / 8000)));
    }
    frames.push(frame);
  }
  return frames;
}

function linearToUlaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  magnitude = 0;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const PROMPT = promptFrames(promptMs);

interface Call {
  id: string;
  bridgeId: string;
  externalId: string;
  socket: Socket;
  digits: string;
  keys: () => void;
  ended: () => void;
  /** Prompt frames sent so far; -1 while the media is not up (or no prompt). */
  frame: number;
  seq: number;
  ssrc: number;
  remote?: { address: string; port: number };
}

const calls = new Map<string, Call>();
const externalWaiters = new Map<string, () => void>();
const stats = { started: 0, ok: 0, failed: 0, errors: [] as string[] };
const speaking = new Set<Call>();

async function runCall(channelId: string): Promise<void> {
  stats.started++;
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.on('message', () => {});
  let keys!: () => void;
  let ended!: () => void;
  const gotKeys = new Promise<void>((resolve) => {
    keys = resolve;
  });
  const hungUp = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const call: Call = {
    id: channelId,
    bridgeId: randomUUID(),
    externalId: randomUUID(),
    socket,
    digits: '',
    keys,
    ended,
    frame: -1,
    seq: Math.floor(Math.random() * 65535),
    ssrc: Math.floor(Math.random() * 2 ** 32),
  };
  calls.set(channelId, call);
  try {
    await ari('POST', `/channels/${channelId}/answer`);
    const externalUp = new Promise<void>((resolve) => externalWaiters.set(call.externalId, resolve));
    await Promise.all([
      (async () => {
        await ari('POST', `/bridges?type=mixing&bridgeId=${call.bridgeId}`);
        await ari('POST', `/bridges/${call.bridgeId}/addChannel?channel=${channelId}`);
      })(),
      (async () => {
        const external = (await ari(
          'POST',
          `/channels/externalMedia?app=${app}&channelId=${call.externalId}&external_host=127.0.0.1:${socket.address().port}&format=ulaw&encapsulation=rtp&transport=udp&direction=both`,
        )) as { channelvars: Record<string, string> };
        call.remote = {
          address: external.channelvars.UNICASTRTP_LOCAL_ADDRESS!,
          port: Number(external.channelvars.UNICASTRTP_LOCAL_PORT),
        };
        await externalUp;
      })(),
    ]);
    await ari('POST', `/bridges/${call.bridgeId}/addChannel?channel=${call.externalId}`);
    if (PROMPT.length > 0) {
      call.frame = 0;
      speaking.add(call);
    }
    await Promise.race([gotKeys, hungUp]);
    if (call.digits === '12') stats.ok++;
    else stats.failed++;
    await ari('DELETE', `/channels/${channelId}`).catch(() => {});
  } catch (error) {
    stats.failed++;
    if (stats.errors.length < 5) stats.errors.push(String(error));
  } finally {
    speaking.delete(call);
    calls.delete(channelId);
    await ari('DELETE', `/bridges/${call.bridgeId}`).catch(() => {});
    await ari('DELETE', `/channels/${call.externalId}`).catch(() => {});
    socket.close();
  }
}

/** One timer for every call: the next prompt frame, as an RTP packet (PT 0). */
function sendPromptFrames(): void {
  for (const call of speaking) {
    if (!call.remote) continue;
    const payload = PROMPT[call.frame]!;
    const packet = Buffer.allocUnsafe(12 + payload.length);
    packet[0] = 0x80;
    packet[1] = call.frame === 0 ? 0x80 : 0x00;
    packet.writeUInt16BE(call.seq & 0xffff, 2);
    packet.writeUInt32BE((call.frame * 160) >>> 0, 4);
    packet.writeUInt32BE(call.ssrc >>> 0, 8);
    payload.copy(packet, 12);
    call.socket.send(packet, call.remote.port, call.remote.address);
    call.seq++;
    if (++call.frame >= PROMPT.length) speaking.delete(call);
  }
}

function onEvent(event: { type: string; args?: string[]; channel?: { id: string }; digit?: string }): void {
  const id = event.channel?.id;
  if (id === undefined) return;
  switch (event.type) {
    case 'StasisStart':
      if (event.args?.[0] === 'call') void runCall(id);
      else {
        externalWaiters.get(id)?.();
        externalWaiters.delete(id);
      }
      break;
    case 'ChannelDtmfReceived': {
      const call = calls.get(id);
      if (!call) break;
      if (event.digit === '#') call.keys();
      else call.digits += event.digit;
      break;
    }
    case 'StasisEnd':
    case 'ChannelDestroyed':
      calls.get(id)?.ended();
      break;
  }
}

async function main(): Promise<void> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/events?app=${app}`, {
    headers: { Authorization: authorization },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('message', (data) => onEvent(JSON.parse(data.toString())));
  const timer = PROMPT.length > 0 ? setInterval(sendPromptFrames, 20) : undefined;
  let cpuFrom = process.cpuUsage();
  const report = () => {
    const cpu = process.cpuUsage(cpuFrom);
    return {
      type: 'report',
      started: stats.started,
      ok: stats.ok,
      failed: stats.failed,
      errors: stats.errors,
      cpuMs: (cpu.user + cpu.system) / 1000,
      maxRssKiB: process.resourceUsage().maxRSS,
    };
  };
  if (!process.send) {
    console.log(`raw-ari-baseline: app ${app} connected to ${base}; Ctrl-C prints the figures`);
    process.once('SIGINT', () => {
      console.log(report());
      process.exit(0);
    });
    return;
  }
  process.on('message', (m: { type: string }) => {
    if (m.type === 'reset') {
      cpuFrom = process.cpuUsage();
      process.send!({ type: 'reset' });
    } else if (m.type === 'report') process.send!(report());
    else if (m.type === 'close') {
      clearInterval(timer);
      ws.close();
      process.exit(0);
    }
  });
  process.send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
