/**
 * CPU per outbound RTP packet, without the clock: each round sends one frame on each of N sessions,
 * back to back, with no timer in between, so the figure is the send path alone (JS, dgram, the
 * kernel's UDP send and loopback delivery to a sink socket), not wake-ups or cache misses between
 * ticks (bench/rtp-pacing.ts measures those, on the real clock). Prints, does not assert.
 *
 *   npx tsx bench/rtp-send-cost.ts [--streams 500] [--rounds 400] [--repeat 5] [--cold]
 *
 * --cold  before each round (outside the measure), read through 32 MiB of memory, so that the
 *         round starts with the sessions' objects out of the CPU caches, as on the real clock,
 *         where 20 ms of other work pass between two frames of a call.
 *
 * Three senders, run in turn within one process, each --repeat times (the median is printed):
 *   naive       pre-encoded packets, `socket.send(packet, port, address)` on unconnected sockets
 *               (the anchor of bench/rtp-pacing.ts);
 *   naive-conn  the same packets on sockets connected to the sink (`socket.send(packet)`);
 *   stack       the media stack: AudioPlayer → RtpSession (header, µ-law copy, its peer
 *               connected, see RtpSession.setRemote) on a Pacer driven by a fake clock.
 */

import { createSocket, type Socket } from 'node:dgram';
import { AudioPlayer } from '../src/media/audio-player.js';
import { Pacer, type PacerClock } from '../src/media/pacer.js';
import { PortAllocator } from '../src/media/port-allocator.js';
import { RtpSession } from '../src/media/rtp-session.js';
import { machine, median, numberFlag } from './support/bench-util.js';
import { preEncodedPackets, stampFrame } from './support/naive-rtp.js';

const streams = numberFlag('streams', 500);
const rounds = numberFlag('rounds', 400);
const repeat = numberFlag('repeat', 5);
const cold = process.argv.includes('--cold');
const thrash = cold ? new Float64Array(4 * 1024 * 1024) : undefined;
let thrashSink = 0;

/** Reads through `thrash` (a cache line at a time), evicting what the last round left in cache. */
function evictCaches(): void {
  if (!thrash) return;
  let sum = 0;
  for (let i = 0; i < thrash.length; i += 8) sum += thrash[i]!;
  thrashSink += sum;
}

interface Cost {
  user: number;
  sys: number;
  wall: number;
}

/** Runs `round` `rounds` times (after two warm-up passes) and returns ns per packet. */
function measure(round: () => void): Cost {
  for (let i = 0; i < 2 * rounds; i++) round();
  let user = 0;
  let sys = 0;
  let wall = 0;
  // Cold: each round on its own, the caches emptied before it, outside its measure.
  for (let i = 0; i < (cold ? rounds : 1); i++) {
    evictCaches();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < (cold ? 1 : rounds); k++) round();
    wall += performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    user += cpu.user;
    sys += cpu.system;
  }
  const packets = streams * rounds;
  return { user: (user * 1000) / packets, sys: (sys * 1000) / packets, wall: (wall * 1e6) / packets };
}

async function main(): Promise<void> {
  const sink = createSocket('udp4');
  sink.on('message', () => {});
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
  const port = sink.address().port;
  const allocator = new PortAllocator({ min: 43000, max: 43000 + 3 * streams + 10 });

  const sockets = await Promise.all(
    Array.from({ length: streams }, () => allocator.allocate('127.0.0.1').then((a) => a.socket)),
  );
  const connected = await Promise.all(
    Array.from({ length: streams }, () => allocator.allocate('127.0.0.1').then((a) => a.socket)),
  );
  await Promise.all(
    connected.map((s) => new Promise<void>((resolve) => s.connect(port, '127.0.0.1', resolve))),
  );
  const packets = preEncodedPackets(streams, Buffer.alloc(160, 0xff));
  let frame = 0;
  const naiveRound = (socketsOf: Socket[], withAddress: boolean) => () => {
    for (let i = 0; i < streams; i++) {
      const packet = packets[i]!;
      stampFrame(packet, frame);
      if (withAddress) socketsOf[i]!.send(packet, port, '127.0.0.1');
      else socketsOf[i]!.send(packet);
    }
    frame++;
  };

  // The stack on a pacer whose timer is called by hand: one call is one tick of every stream.
  let now = 0;
  const due: (() => void)[] = [];
  const clock: PacerClock = {
    now: () => now,
    setTimer: (fn) => due.push(fn),
    clearTimer: () => {},
  };
  const pacer = new Pacer({ clock, slots: 1, slotCapacity: streams });
  const sessions: RtpSession[] = [];
  for (let i = 0; i < streams; i++) {
    const session = await RtpSession.open({ allocator, bindAddress: '127.0.0.1' });
    session.setRemote('127.0.0.1', port);
    sessions.push(session);
  }
  const players = sessions.map((sink) => new AudioPlayer({ sink, pacer }));
  const totalRounds = (2 + 1) * rounds * repeat + 10;
  const audio = new Uint8Array(160 * totalRounds).fill(0xff);
  for (const player of players) void player.playUlaw(audio);
  const stackRound = () => {
    now += 20;
    for (const fn of due.splice(0)) fn();
  };
  await new Promise((resolve) => setImmediate(resolve));

  const senders: [string, () => void][] = [
    ['naive', naiveRound(sockets, true)],
    ['naive-conn', naiveRound(connected, false)],
    ['stack', stackRound],
  ];
  const costs = new Map<string, Cost[]>(senders.map(([name]) => [name, []]));
  for (let r = 0; r < repeat; r++) for (const [name, round] of senders) costs.get(name)!.push(measure(round));

  console.log(
    `rtp-send-cost: ${streams} streams × ${rounds} rounds, ${repeat} runs each${cold ? ', caches emptied before each round' : ''}; ${machine()}`,
  );
  console.log('| sender | user ns/packet | sys ns/packet | wall ns/packet |');
  console.log('|---|---|---|---|');
  for (const [name, list] of costs) {
    const f = (k: keyof Cost) => median(list.map((c) => c[k])).toFixed(0);
    console.log(`| ${name} | ${f('user')} | ${f('sys')} | ${f('wall')} |`);
  }
  for (const player of players) player.close();
  await Promise.all(sessions.map((s) => s.close()));
  for (const s of [...sockets, ...connected]) s.close();
  sink.close();
  if (thrashSink < 0) console.log(thrashSink);
}

await main();
