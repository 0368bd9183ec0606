/**
 * Cost per call on a real Asterisk 22, asteramisk against a hand-written raw ARI app, in one run.
 *
 *   ASTERISK_HOST=127.0.0.1 ASTERISK_ARI_USER=… ASTERISK_ARI_PASS=… ASTERISK_AMI_USER=… ASTERISK_AMI_PASS=… \
 *     npx tsx bench/real-pbx-load.ts [--calls 300] [--rate 30] [--hold-ms 10000] [--prompt both|none|3s]
 *       [--apps both|library|raw] [--number 7301] [--repeat 1]
 *
 * Needs sipp on the PATH, run as root (play_dtmf sends RFC 4733 through a raw socket), and the
 * PBX's `alice` endpoint entering the `asteramisk-call` context (example-configs/). Without
 * ASTERISK_HOST it prints this and exits 0.
 *
 * Per run, one app at a time in a child process of its own: `library` is a Server
 * (registerExtension, handler: answer; say() which opens the mixing bridge + externalMedia RTP
 * leg; gather "12#"; hang up), `raw` is bench/raw-ari-baseline.ts doing the same 8 ARI requests
 * with plain fetch + ws. sipp (bench/sipp/load-caller.xml) places --calls calls as alice at
 * --rate a second; each waits --hold-ms after the answer, presses 1 2 #, and the app hangs up.
 * With `--prompt 3s` every call first hears a 3 s prompt over its RTP leg (the library: an
 * offline-TTS prompt from the in-memory cache; raw: a tone encoded once, one 20 ms interval).
 *
 * Printed per run: calls ok/failed (the app got "12"), the app's CPU per call (process.cpuUsage of
 * the child, from the first INVITE until every call ended, divided by the calls), its max RSS,
 * Asterisk's CPU over the same span (/proc/<pid>/stat), sipp's result; then the ratio
 * library / raw per prompt variant.
 */

import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiClient } from '../src/asterisk/ami-client.js';
import { HangupError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import { Server } from '../src/server.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';
import { choiceFlag, machine, median, numberFlag } from './support/bench-util.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** Compiled (tsc, with bench/sipp copied beside it) the baseline is a .js file; under tsx, the source. */
const RAW_APP_FILE = import.meta.url.endsWith('.js') ? 'raw-ari-baseline.js' : 'raw-ari-baseline.ts';
const childMode = process.argv.includes('--child');
const calls = numberFlag('calls', 300);
const rate = numberFlag('rate', 30);
const holdMs = numberFlag('hold-ms', 10_000);
const promptChoice = choiceFlag('prompt', ['both', 'none', '3s'] as const, 'both');
const appsChoice = choiceFlag('apps', ['both', 'library', 'raw'] as const, 'both');
/** Rounds of every (prompt, app) run; the order of the apps alternates from round to round. */
const repeat = numberFlag('repeat', 1);
const NUMBER = String(numberFlag('number', 7301));
/** The library's offline TTS: 20 ms per character, so 150 characters are a 3 s prompt. */
const MS_PER_CHAR = 20;

interface Report {
  type: 'report';
  started: number;
  ok: number;
  failed: number;
  errors: string[];
  cpuMs: number;
  maxRssKiB: number;
}

// ---------------------------------------------------------------------------------- library child
async function libraryChild(): Promise<void> {
  const promptMs = numberFlag('prompt-ms', 0);
  const prompt = promptMs > 0 ? 'a'.repeat(Math.round(promptMs / MS_PER_CHAR)) : ' ';
  const stats = { started: 0, ok: 0, failed: 0, errors: [] as string[] };
  const server = await Server.create({
    asteriskHost: process.env.ASTERISK_HOST ?? '127.0.0.1',
    ariUser: process.env.ASTERISK_ARI_USER ?? '',
    ariPassword: process.env.ASTERISK_ARI_PASS ?? '',
    amiUser: process.env.ASTERISK_AMI_USER ?? '',
    amiPassword: process.env.ASTERISK_AMI_PASS ?? '',
    appName: `lib-bench-${process.pid}`,
    logger: silentLogger,
    tts: new OfflineTtsEngine({ msPerChar: MS_PER_CHAR }),
    stt: false,
    ttsCacheDirectory: false,
    maxConcurrentCalls: 2000,
  });
  await server.registerExtension(NUMBER, {
    voice: async (ui) => {
      stats.started++;
      try {
        await ui.answer();
        // Opens the call's media (mixing bridge + externalMedia RTP leg) and plays the prompt
        // (one frame of silence without one).
        await ui.say(prompt);
        const keys = await ui.gather(undefined, { finishOnKey: '#', numDigits: 10, timeout: 60 });
        if (keys === '12') stats.ok++;
        else stats.failed++;
        await ui.hangup();
      } catch (error) {
        if (!(error instanceof HangupError)) {
          stats.failed++;
          if (stats.errors.length < 5) stats.errors.push(String(error));
        } else stats.failed++;
      }
    },
  });
  let cpuFrom = process.cpuUsage();
  process.on('message', (m: { type: string }) => {
    if (m.type === 'reset') {
      cpuFrom = process.cpuUsage();
      process.send?.({ type: 'reset' });
    } else if (m.type === 'report') {
      const cpu = process.cpuUsage(cpuFrom);
      process.send?.({
        type: 'report',
        ...stats,
        cpuMs: (cpu.user + cpu.system) / 1000,
        maxRssKiB: process.resourceUsage().maxRSS,
      } satisfies Report);
    } else if (m.type === 'close') {
      void server.close().finally(() => process.exit(0));
    }
  });
  process.send?.({ type: 'ready' });
}

// ---------------------------------------------------------------------------------- the bench
function ask<T>(child: ChildProcess, message: { type: string }, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if ((m as { type: string }).type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null) => reject(new Error(`the app process exited with ${code}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message.type !== 'ready') child.send(message);
  });
}

/** utime + stime of a process in ms (clock ticks of 10 ms on Linux). */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function asteriskPid(): number | undefined {
  const out = spawnSync('pidof', ['asterisk'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0];
  return out ? Number(out) : undefined;
}

interface RunResult {
  app: 'library' | 'raw';
  promptMs: number;
  report: Report;
  wallS: number;
  asteriskCpuMs: number | undefined;
  sipp: { code: number | null; summary: string };
}

async function runSipp(dir: string): Promise<{ code: number | null; summary: string }> {
  const args = [
    ...['-sf', 'load-caller.xml', '-s', NUMBER, '-m', String(calls), '-r', String(rate), '-l', String(calls)],
    ...[
      '-i',
      '127.0.0.1',
      '-p',
      '0',
      '-mi',
      '127.0.0.1',
      '-mp',
      String(30000 + 2 * Math.floor(Math.random() * 2000)),
    ],
    ...[
      '-rtp_echo',
      '-nostdin',
      '-timeout',
      `${Math.ceil(calls / rate + holdMs / 1000 + 120)}s`,
      '-timeout_error',
    ],
    ...['-trace_stat', '-stf', 'stat.csv', '-trace_err', '-error_file', 'errors.log'],
    `${process.env.ASTERISK_HOST ?? '127.0.0.1'}:5060`,
  ];
  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, summary: stderr.trim().split('\n').slice(-3).join(' | ') };
}

async function run(app: 'library' | 'raw', promptMs: number, ami: AmiClient): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'asteramisk-pbx-load-'));
  const scenario = readFileSync(join(HERE, 'sipp', 'load-caller.xml'), 'utf8').replace(
    '<pause milliseconds="10000"/>',
    `<pause milliseconds="${holdMs}"/>`,
  );
  writeFileSync(join(dir, 'load-caller.xml'), scenario);
  const rawApp = `raw-bench-${process.pid}`;
  const child =
    app === 'library'
      ? fork(fileURLToPath(import.meta.url), ['--child', '--prompt-ms', String(promptMs)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(join(HERE, RAW_APP_FILE), ['--app', rawApp, '--prompt-ms', String(promptMs)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
  try {
    await ask(child, { type: 'ready' }, 'ready');
    if (app === 'raw') {
      // The library's Server registers its own extension; the raw app gets the same one here.
      await ami.action({
        Action: 'DialplanExtensionAdd',
        Context: 'asteramisk-call',
        Extension: NUMBER,
        Priority: '1',
        Application: 'Stasis',
        ApplicationData: `${rawApp},call`,
        Replace: 'yes',
      });
    }
    const pid = asteriskPid();
    const asteriskFrom = pid ? processCpuMs(pid) : undefined;
    await ask(child, { type: 'reset' }, 'reset');
    const started = performance.now();
    const sipp = await runSipp(dir);
    // Let the last hang-ups and clean-ups finish.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const report = await ask<Report>(child, { type: 'report' }, 'report');
    const wallS = (performance.now() - started) / 1000;
    const asteriskCpuMs = pid && asteriskFrom !== undefined ? processCpuMs(pid) - asteriskFrom : undefined;
    if (app === 'raw') {
      await ami
        .action({ Action: 'DialplanExtensionRemove', Context: 'asteramisk-call', Extension: NUMBER })
        .catch(() => {});
    }
    return { app, promptMs, report, wallS, asteriskCpuMs, sipp };
  } finally {
    if (child.exitCode === null) {
      child.send({ type: 'close' });
      await new Promise((resolve) => {
        const timer = setTimeout(() => child.kill(), 10_000);
        child.once('exit', () => resolve(clearTimeout(timer)));
      });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(r: RunResult): void {
  const perCall = r.report.cpuMs / Math.max(1, r.report.started);
  console.log(
    `  ${r.app.padEnd(7)} prompt ${r.promptMs ? `${r.promptMs / 1000} s` : 'none'}: ` +
      `${r.report.ok}/${calls} ok, ${r.report.failed} failed (${r.report.started} reached the app); ` +
      `app CPU ${r.report.cpuMs.toFixed(0)} ms = ${perCall.toFixed(1)} ms per call; ` +
      `max RSS ${(r.report.maxRssKiB / 1024).toFixed(0)} MB; ` +
      `Asterisk CPU ${r.asteriskCpuMs === undefined ? '?' : `${r.asteriskCpuMs} ms (${(r.asteriskCpuMs / calls).toFixed(1)} ms per call)`}; ` +
      `${r.wallS.toFixed(1)} s; sipp exit ${r.sipp.code}`,
  );
  if (r.report.errors.length) console.log(`    errors: ${r.report.errors.join('; ')}`);
  if (r.sipp.code !== 0) console.log(`    sipp: ${r.sipp.summary}`);
}

async function main(): Promise<void> {
  if (!process.env.ASTERISK_HOST) {
    console.log(
      'real-pbx-load: set ASTERISK_HOST (and ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS) to run against a real Asterisk 22:\n' +
        '  ASTERISK_HOST=127.0.0.1 ASTERISK_ARI_USER=… ASTERISK_ARI_PASS=… ASTERISK_AMI_USER=… ASTERISK_AMI_PASS=… \\\n' +
        '    npx tsx bench/real-pbx-load.ts [--calls 300] [--rate 30] [--hold-ms 10000] [--prompt both|none|3s] [--apps both|library|raw] [--repeat 1]\n' +
        'Needs sipp on the PATH and root (RFC 4733 via a raw socket). Nothing run.',
    );
    return;
  }
  if (spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error) {
    console.log('real-pbx-load: sipp is not on the PATH (Debian: apt-get install sip-tester). Nothing run.');
    return;
  }
  const ami = new AmiClient({
    host: process.env.ASTERISK_HOST,
    port: Number(process.env.ASTERISK_AMI_PORT ?? 5038),
    username: process.env.ASTERISK_AMI_USER ?? '',
    password: process.env.ASTERISK_AMI_PASS ?? '',
    events: false,
    logger: silentLogger,
  });
  await ami.connect();
  const version = await ami.action({ Action: 'Command', Command: 'core show version' });
  console.log(
    `real-pbx-load: ${calls} calls at ${rate}/s, held ${holdMs / 1000} s then "12#"; ` +
      `${String(version.fields.Output ?? '').split(' built')[0]}; machine: ${machine()}`,
  );
  const prompts = promptChoice === 'both' ? [0, 3000] : promptChoice === 'none' ? [0] : [3000];
  const apps: ('library' | 'raw')[] = appsChoice === 'both' ? ['library', 'raw'] : [appsChoice];
  const results: RunResult[] = [];
  try {
    for (let round = 0; round < repeat; round++) {
      for (const promptMs of prompts) {
        // Alternate which app goes first: the machine's state drifts over a few minutes.
        for (const app of round % 2 === 0 ? apps : [...apps].reverse()) {
          const result = await run(app, promptMs, ami);
          print(result);
          results.push(result);
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      }
    }
  } finally {
    await ami.close();
  }
  console.log('');
  console.log('| prompt | app | calls ok | CPU per call | max RSS | Asterisk CPU per call |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.promptMs ? '3 s over RTP' : 'none'} | ${r.app} | ${r.report.ok}/${calls} | ` +
        `${(r.report.cpuMs / Math.max(1, r.report.started)).toFixed(1)} ms | ${(r.report.maxRssKiB / 1024).toFixed(0)} MB | ` +
        `${r.asteriskCpuMs === undefined ? '?' : (r.asteriskCpuMs / calls).toFixed(1)} ms |`,
    );
  }
  const perCall = (r: RunResult) => r.report.cpuMs / Math.max(1, r.report.started);
  for (const promptMs of prompts) {
    const libs = results.filter((r) => r.app === 'library' && r.promptMs === promptMs);
    const raws = results.filter((r) => r.app === 'raw' && r.promptMs === promptMs);
    // One ratio per round, from the two runs of that round (side by side in time).
    const ratios = libs
      .map((lib, i) => raws[i] && perCall(lib) / perCall(raws[i]))
      .filter((x) => x !== undefined);
    if (ratios.length === 0) continue;
    const label = `ratio library / raw, prompt ${promptMs ? '3 s' : 'none'}`;
    if (ratios.length === 1) console.log(`${label}: ${ratios[0]!.toFixed(2)}×`);
    else {
      // An even count has two middle values: their mean (taking the lower one flattered the library).
      const middle = median(ratios);
      // All rounds pooled: the library's CPU over the raw app's, each summed over its runs.
      const rounds = ratios.length;
      const sum = (runs: typeof libs) => runs.slice(0, rounds).reduce((n, run) => n + perCall(run), 0);
      console.log(
        `${label}: median ${middle.toFixed(2)}× over ${rounds} rounds (each: ${ratios.map((x) => x.toFixed(2)).join(', ')}); ` +
          `pooled ${(sum(libs) / sum(raws)).toFixed(2)}×`,
      );
    }
  }
}

if (childMode) {
  libraryChild().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
