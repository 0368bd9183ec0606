import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AmiClient } from '../../../src/asterisk/ami-client.js';
import { writeAudioPcap, writeTonePcap } from './tone-pcap.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Whether a `sipp` binary is on the PATH. */
export function sippAvailable(): boolean {
  return spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error === undefined;
}

/** How a sipp run ended, with what it wrote. */
export interface SippResult {
  /** sipp's exit code: 0 when every call succeeded. */
  code: number | null;
  stderr: string;
  /** The SIP messages sent and received (`-trace_msg`). */
  messages: string;
  /** What the scenario logged: one `command: …` line per command it carried out. */
  log: string;
  /** The final statistics screen. */
  screen: string;
}

/** Options of {@link SippPhone.call}. */
export interface SippPhoneOptions {
  /** The number to call. */
  to: string;
  /** Asterisk's SIP address. Default 127.0.0.1:5060. */
  proxy?: string;
  /** Local address for SIP and RTP. Default 127.0.0.1. */
  localAddress?: string;
  /** The scenario, a file of this folder. Default `ivr-caller.xml`. */
  scenario?: string;
  /** What `tone` plays: a tone (default 2 s of 440 Hz), or 8 kHz audio (e.g. espeak-ng speech). */
  tone?: { ms: number; hz: number } | { pcm: Int16Array };
  /** sipp gives up after this many seconds. Default 120. */
  timeoutSeconds?: number;
  /** Place several calls: `total` in all, `rate` new calls a second, at most `limit` at once. Default one call. */
  calls?: { total: number; rate: number; limit: number };
}

/** A free UDP port on `address` (bound and released at once). */
export async function freeUdpPort(address: string, port = 0): Promise<number | undefined> {
  const socket = createSocket('udp4');
  try {
    return await new Promise((resolve) => {
      socket.once('error', () => resolve(undefined));
      socket.bind(port, address, () => resolve(socket.address().port));
    });
  } finally {
    socket.close();
  }
}

/** An even RTP port whose +2 (sipp's second media socket) is free as well. */
async function freeMediaPort(address: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 44000 + 2 * Math.floor(Math.random() * 5000);
    if ((await freeUdpPort(address, base)) && (await freeUdpPort(address, base + 2))) return base;
  }
  throw new Error('no free UDP port pair for sipp media');
}

/**
 * A SIP phone played by sipp with `ivr-caller.xml` ({@link call}): it calls `to` as alice, then
 * carries out the commands the test sends into the call (as in-dialog MESSAGEs through AMI
 * SendText), and ends when Asterisk hangs up. {@link serve} runs a server scenario instead (the
 * PBX side, to test the phone itself). sipp runs in a folder of its own (scenario, tone.pcap,
 * logs), removed by {@link dispose}. play_dtmf and play_pcap_audio send through a raw socket:
 * sipp needs root (or CAP_NET_RAW).
 */
export class SippPhone {
  readonly dir: string;
  readonly sipPort: number;
  readonly mediaPort: number;
  /** Resolves when sipp exits. */
  readonly result: Promise<SippResult>;
  /** The caller's channel name in Asterisk (`PJSIP/alice-…`), once the test knows it. */
  channelName?: string;
  private readonly process: ChildProcess;

  private constructor(dir: string, sipPort: number, mediaPort: number, child: ChildProcess) {
    this.dir = dir;
    this.sipPort = sipPort;
    this.mediaPort = mediaPort;
    this.process = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.result = new Promise((resolve) => {
      const finish = (code: number | null) =>
        resolve({
          code,
          stderr,
          messages: this.read('messages.log'),
          log: this.read('logs.log'),
          screen: this.read('screen.log'),
        });
      child.once('exit', finish);
      child.once('error', (error) => {
        stderr += String(error);
        finish(null);
      });
    });
  }

  /** Starts sipp: it sends the INVITE at once. */
  static call(options: SippPhoneOptions): Promise<SippPhone> {
    const target = ['-s', options.to, '-rtp_echo', options.proxy ?? '127.0.0.1:5060'];
    return SippPhone.start(options.scenario ?? 'ivr-caller.xml', options, target);
  }

  /** Starts sipp with a server scenario of this folder (e.g. `reinvite-pbx.xml`), waiting for a call. */
  static serve(scenario: string, options: Omit<SippPhoneOptions, 'to' | 'proxy'> = {}): Promise<SippPhone> {
    return SippPhone.start(scenario, options, []);
  }

  private static async start(
    scenario: string,
    options: Omit<SippPhoneOptions, 'to' | 'proxy' | 'scenario'>,
    extraArgs: readonly string[],
  ): Promise<SippPhone> {
    const local = options.localAddress ?? '127.0.0.1';
    const dir = mkdtempSync(join(tmpdir(), 'asteramisk-sipp-'));
    copyFileSync(join(HERE, scenario), join(dir, scenario));
    const tone = options.tone ?? { ms: 2000, hz: 440 };
    if ('pcm' in tone) writeAudioPcap(join(dir, 'tone.pcap'), tone.pcm);
    else writeTonePcap(join(dir, 'tone.pcap'), tone);
    const sipPort = await freeUdpPort(local);
    if (!sipPort) throw new Error(`no free UDP port on ${local}`);
    const mediaPort = await freeMediaPort(local);
    const timeout = options.timeoutSeconds ?? 120;
    const args = [
      ...['-sf', scenario, '-m', String(options.calls?.total ?? 1), '-nostdin'],
      ...(options.calls ? ['-r', String(options.calls.rate), '-l', String(options.calls.limit)] : []),
      ...['-i', local, '-p', String(sipPort), '-mi', local, '-mp', String(mediaPort)],
      ...['-timeout', `${timeout}s`, '-timeout_error'],
      ...['-trace_msg', '-message_file', 'messages.log', '-trace_err', '-error_file', 'errors.log'],
      ...['-trace_screen', '-screen_file', 'screen.log', '-trace_logs', '-log_file', 'logs.log'],
      ...extraArgs,
    ];
    const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    return new SippPhone(dir, sipPort, mediaPort, child);
  }

  /** Sends a command into the call (AMI SendText to {@link channelName}): `dtmf 12#`, `tone`, `echo on`. */
  async command(ami: AmiClient, command: string): Promise<void> {
    if (!this.channelName) throw new Error('the phone does not know its channel yet');
    await ami.action({ Action: 'SendText', Channel: this.channelName, Message: command });
  }

  /** Waits for sipp to exit, killing it after `ms`. */
  async finished(ms: number): Promise<SippResult> {
    const timer = setTimeout(() => this.process.kill('SIGKILL'), ms);
    try {
      return await this.result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills sipp if it still runs and removes its folder. */
  async dispose(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL');
      await this.result;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private read(name: string): string {
    const path = join(this.dir, name);
    return existsSync(path) ? readFileSync(path, 'latin1') : '';
  }
}
