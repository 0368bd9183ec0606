import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { AmiClient } from '../asterisk/ami-client.js';
import { AriClient } from '../asterisk/ari-client.js';
import type { Channel } from '../asterisk/ari-types.js';
import { readCaFile } from '../asterisk/tls.js';
import { chooseStt, chooseTts } from '../call-services.js';
import { type Config, resolveConfig } from '../config.js';
import { AmiActionError, AuthenticationError, ConfigError } from '../errors.js';
import { PortAllocator } from '../media/port-allocator.js';
import { decodeRtp, encodeRtp, PT_PCMU } from '../media/rtp-packet.js';
import type { SttEngineName } from '../stt/create-stt-engine.js';
import type { SttEngine } from '../stt/stt-engine.js';
import type { TtsEngineName } from '../tts/create-tts-engine.js';
import type { TtsEngine } from '../tts/tts-engine.js';

/** The outcome of one check: passed, failed (with a fix), a warning, or not run. */
export interface CheckResult {
  status: 'ok' | 'fail' | 'warn' | 'skip';
  /** What was checked and what was found. */
  what: string;
  /** How to fix it (failures and warnings). */
  fix?: string;
}

/**
 * Modules asteramisk needs (example-configs/README.md): checked with AMI `ModuleCheck`, which
 * answers `Module not loaded` for a module that is absent, failed or unloaded.
 */
export const REQUIRED_MODULES = [
  'res_ari',
  'res_ari_channels',
  'res_ari_bridges',
  'res_ari_playbacks',
  'res_ari_recordings',
  'res_ari_endpoints',
  'res_ari_asterisk',
  'res_ari_applications',
  'res_ari_events',
  'res_stasis',
  'app_stasis',
  'res_http_websocket',
  'chan_pjsip',
  'res_pjsip_messaging',
  'chan_rtp',
  'func_talkdetect',
  'pbx_config',
  'codec_ulaw',
] as const;

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  /** Receives each output line. */
  print?: (line: string) => void;
  /** Time limit of each network step (ms). Default 5000. */
  timeoutMs?: number;
  /** RTP packets sent each way by the media probe. Default 25 (0.5 s). */
  rtpPackets?: number;
  /** Speech engines to check; default those a Server would use in this environment. */
  speech?: SpeechChoice;
}

const MARK = { ok: '✔', fail: '✘', warn: '!', skip: '-' } as const;

/** Formats one check as a line: mark, what, and the fix when there is one. */
export function formatCheck(c: CheckResult): string {
  return `${MARK[c.status]} ${c.what}${c.fix && c.status !== 'ok' ? ` — fix: ${c.fix}` : ''}`;
}

function why(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function tlsOf(config: Config) {
  return {
    ...(config.tlsCaFile ? { ca: readCaFile(config.tlsCaFile) } : {}),
    ...(config.tlsServerName ? { servername: config.tlsServerName } : {}),
  };
}

/**
 * Checks an installation, one {@link CheckResult} per check, printing each as it completes.
 * Resolves with the process exit code: 0 when nothing failed, 1 otherwise (the last line then
 * names the first failure and its fix).
 */
export async function runDoctor(options: DoctorOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const print = options.print ?? ((line: string) => console.log(line));
  const timeoutMs = options.timeoutMs ?? 5000;
  const results: CheckResult[] = [];
  const report = (c: CheckResult): CheckResult => {
    results.push(c);
    print(formatCheck(c));
    return c;
  };
  const finish = (): number => {
    const failed = results.find((r) => r.status === 'fail');
    if (!failed) {
      print('doctor: all checks passed');
      return 0;
    }
    print(`doctor: FAILED: ${failed.what}${failed.fix ? `; fix: ${failed.fix}` : ''}`);
    return 1;
  };

  let config: Config;
  try {
    config = resolveConfig({ appName: `asteramisk-doctor-${randomBytes(4).toString('hex')}` }, env);
    report({
      status: 'ok',
      what: `config: Asterisk at ${config.asteriskHost} (ARI ${config.ariPort}, AMI ${config.amiPort}), ASTERAMISK_HOST ${config.asteramiskHost}`,
    });
  } catch (err) {
    report({
      status: 'fail',
      what: `config: ${why(err)}`,
      fix: err instanceof ConfigError ? 'set the variable named above' : 'check the environment',
    });
    return finish();
  }

  // ------------------------------------------------------------------ ARI
  const ariUrl = `${config.ariTls ? 'https' : 'http'}://${hostForUrl(config.asteriskHost)}:${config.ariPort}`;
  const ari = new AriClient({
    url: ariUrl,
    username: config.ariUser,
    password: config.ariPassword,
    app: config.appName,
    requestTimeoutMs: timeoutMs,
    connectTimeoutMs: timeoutMs,
    ...(config.ariTls ? { tls: tlsOf(config) } : {}),
  });
  let ariOk = false;
  let version: string | undefined;
  try {
    const info = await ari.asterisk.info(['system']);
    version = info.system?.version;
    await ari.connect();
    ariOk = true;
    report({ status: 'ok', what: `ARI: ${ariUrl} reachable, user ${config.ariUser} accepted` });
  } catch (err) {
    if (err instanceof AuthenticationError) {
      report({
        status: 'fail',
        what: `ARI: ${ariUrl} refused user ${config.ariUser} (401: wrong user or password)`,
        fix: 'set ASTERISK_ARI_USER/ASTERISK_ARI_PASS to a user and password of ari.conf (then `module reload res_ari`)',
      });
    } else {
      report({
        status: 'fail',
        what: `ARI: ${ariUrl} unreachable: ${why(err)}`,
        fix: 'start Asterisk; check ASTERISK_HOST/ASTERISK_ARI_PORT and http.conf (enabled = yes, bindaddr, bindport)',
      });
    }
  }

  // ------------------------------------------------------------------ AMI
  const ami = new AmiClient({
    host: config.asteriskHost,
    port: config.amiPort,
    username: config.amiUser,
    password: config.amiPassword,
    reconnect: false,
    events: false,
    actionTimeoutMs: timeoutMs,
    connectTimeoutMs: timeoutMs,
    ...(config.amiTls ? { tls: tlsOf(config) } : {}),
  });
  let amiOk = false;
  try {
    await ami.connect();
    amiOk = true;
    report({
      status: 'ok',
      what: `AMI: ${config.asteriskHost}:${config.amiPort} reachable, user ${config.amiUser} logged in`,
    });
  } catch (err) {
    if (err instanceof AuthenticationError) {
      report({
        status: 'fail',
        what: `AMI: ${config.asteriskHost}:${config.amiPort} refused user ${config.amiUser}: ${why(err)}`,
        fix: 'set ASTERISK_AMI_USER/ASTERISK_AMI_PASS to a user and secret of manager.conf, permitted from this host (then `manager reload`)',
      });
    } else {
      report({
        status: 'fail',
        what: `AMI: ${config.asteriskHost}:${config.amiPort} unreachable: ${why(err)}`,
        fix: 'start Asterisk; check ASTERISK_HOST/ASTERISK_AMI_PORT and manager.conf (enabled = yes, port, bindaddr)',
      });
    }
  }

  try {
    // ---------------------------------------------------------------- version
    if (amiOk && version === undefined) {
      const line = (await ami.command('core show version'))[0] ?? '';
      version = /Asterisk (\S+)/.exec(line)?.[1];
    }
    if (version === undefined) {
      report({ status: 'skip', what: 'Asterisk version: not checked (neither ARI nor AMI answered)' });
    } else {
      const major = Number(/^(\d+)/.exec(version)?.[1] ?? Number.NaN);
      if (major >= 22) report({ status: 'ok', what: `Asterisk version: ${version}` });
      else if (major >= 20) {
        report({
          status: 'warn',
          what: `Asterisk version: ${version} (22 or newer recommended; asteramisk is tested on 22)`,
          fix: 'upgrade to Asterisk 22 LTS',
        });
      } else {
        report({
          status: 'fail',
          what: `Asterisk version: ${version} is too old (externalMedia and the ARI used need 20+, 22 recommended)`,
          fix: 'upgrade to Asterisk 22 LTS',
        });
      }
    }

    if (amiOk) {
      // -------------------------------------------------------------- modules
      const missing: string[] = [];
      for (const module of REQUIRED_MODULES) {
        try {
          await ami.action({ Action: 'ModuleCheck', Module: module });
        } catch (err) {
          if (err instanceof AmiActionError) missing.push(module);
          else throw err;
        }
      }
      if (missing.length === 0) {
        report({ status: 'ok', what: `modules: ${REQUIRED_MODULES.length} required modules loaded` });
      } else {
        report({
          status: 'fail',
          what: `modules: not loaded: ${missing.join(', ')}`,
          fix: missing.map((m) => `asterisk -rx 'module load ${m}.so'`).join('; '),
        });
      }

      // -------------------------------------------------------------- contexts
      for (const [label, context] of [
        ['call', config.incomingCallContext],
        ['text', config.incomingTextContext],
      ] as const) {
        try {
          await ami.action({ Action: 'ShowDialPlan', Context: context });
          report({ status: 'ok', what: `${label} context: ${context} exists` });
        } catch (err) {
          if (!(err instanceof AmiActionError)) throw err;
          const variable =
            label === 'call' ? 'ASTERISK_INCOMING_CALL_CONTEXT' : 'ASTERISK_INCOMING_TEXT_CONTEXT';
          report({
            status: 'fail',
            what: `${label} context: ${context} does not exist in the dialplan (${err.message.replace(/^AMI ShowDialPlan failed: /, '')})`,
            fix: `add an empty [${context}] to extensions.conf and run \`asterisk -rx 'dialplan reload'\`, or set ${variable} to an existing context`,
          });
        }
      }

      // -------------------------------------------------------------- endpoints
      await checkEndpoints(ami, config, report);
    } else {
      for (const what of ['modules', 'call and text contexts', 'endpoints']) {
        report({ status: 'skip', what: `${what}: not checked (AMI unavailable)` });
      }
    }

    // ---------------------------------------------------------------- RTP
    if (ariOk) {
      report(await rtpProbe(ari, config, timeoutMs, options.rtpPackets ?? 25));
    } else {
      report({ status: 'skip', what: 'RTP round trip: not checked (ARI unavailable)' });
    }

    // ---------------------------------------------------------------- speech
    await speechChecks(config, options.speech ?? {}, timeoutMs, report);
  } finally {
    await Promise.allSettled([ari.close(), ami.close()]);
  }
  return finish();
}

async function checkEndpoints(
  ami: AmiClient,
  config: Config,
  report: (c: CheckResult) => CheckResult,
): Promise<void> {
  let names: string[];
  try {
    const list = await ami.action({ Action: 'PJSIPShowEndpoints' });
    names = list.events.map((e) => String(e.fields.ObjectName ?? '')).filter((n) => n !== '');
  } catch (err) {
    if (!(err instanceof AmiActionError)) throw err;
    report({
      status: 'fail',
      what: `endpoints: PJSIPShowEndpoints failed: ${err.message}`,
      fix: /no endpoints/i.test(err.message)
        ? 'define the phones in pjsip.conf (see example-configs/pjsip.conf)'
        : "load res_pjsip: asterisk -rx 'module load res_pjsip.so'",
    });
    return;
  }
  const withoutText: string[] = [];
  const elsewhere: string[] = [];
  for (const name of names) {
    const detail = await ami.action({ Action: 'PJSIPShowEndpoint', Endpoint: name });
    const ep = detail.events.find((e) => e.fields.Event === 'EndpointDetail');
    if (!ep) continue;
    if (ep.fields.Context !== config.incomingCallContext) continue;
    const messageContext = String(ep.fields.MessageContext ?? '');
    if (messageContext === '') withoutText.push(name);
    else if (messageContext !== config.incomingTextContext) elsewhere.push(`${name} (${messageContext})`);
  }
  if (withoutText.length > 0) {
    report({
      status: 'fail',
      what: `endpoints: no message_context on ${withoutText.join(', ')}: their SIP MESSAGEs never reach asteramisk`,
      fix: `add message_context = ${config.incomingTextContext} to these endpoints in pjsip.conf, then \`asterisk -rx 'module reload res_pjsip.so'\``,
    });
  } else if (elsewhere.length > 0) {
    report({
      status: 'warn',
      what: `endpoints: message_context is not ${config.incomingTextContext} on ${elsewhere.join(', ')}`,
      fix: `set message_context = ${config.incomingTextContext} in pjsip.conf if their texts should reach asteramisk`,
    });
  } else {
    report({
      status: 'ok',
      what: `endpoints: ${names.length} PJSIP endpoints; those calling ${config.incomingCallContext} text ${config.incomingTextContext}`,
    });
  }
}

interface ProbeLeg {
  socket: Socket;
  channel?: Channel;
  peer?: { address: string; port: number };
  received: number;
}

/**
 * The media probe: two externalMedia legs pointed at two UDP sockets of this process (at
 * ASTERAMISK_HOST, as a call's leg is), joined in one bridge. Packets sent to leg A's Asterisk
 * port must come out of leg B to this process, and the other way round: this proves Asterisk
 * receives our RTP and reaches ASTERAMISK_HOST with its own, on the path real calls use.
 */
async function rtpProbe(
  ari: AriClient,
  config: Config,
  timeoutMs: number,
  count: number,
): Promise<CheckResult> {
  const what = `RTP round trip: Asterisk ↔ ${config.asteramiskHost}`;
  const legs: ProbeLeg[] = [];
  let bridgeId: string | undefined;
  // Ports of the configured range, bound like a call's: a firewall rule for that range is tested too.
  const ports = new PortAllocator({ min: config.rtpPortMin, max: config.rtpPortMax });
  try {
    for (let i = 0; i < 2; i++) {
      const leg: ProbeLeg = { socket: (await ports.allocate(config.rtpBindAddress)).socket, received: 0 };
      leg.socket.on('error', () => {});
      leg.socket.on('message', (msg) => {
        if (decodeRtp(msg)) leg.received++;
      });
      legs.push(leg);
    }
    for (const leg of legs) {
      const port = leg.socket.address().port;
      leg.channel = await ari.channels.externalMedia({
        app: config.appName,
        externalHost: `${hostForUrl(config.asteramiskHost)}:${port}`,
        format: 'ulaw',
      });
      const address = leg.channel.channelvars?.UNICASTRTP_LOCAL_ADDRESS;
      const rport = Number(leg.channel.channelvars?.UNICASTRTP_LOCAL_PORT);
      if (!address || !Number.isInteger(rport) || rport <= 0) {
        return {
          status: 'fail',
          what: `${what}: externalMedia gave no UNICASTRTP_LOCAL_ADDRESS/PORT`,
          fix: 'check chan_rtp is loaded and rtp.conf',
        };
      }
      // Asterisk binds its RTP to all addresses: answer from the host we reached it at.
      const unspecified = address === '0.0.0.0' || address === '::';
      leg.peer = { address: unspecified ? config.asteriskHost : address, port: rport };
    }
    const bridge = await ari.bridges.create({ type: 'mixing', name: 'asteramisk-doctor' });
    bridgeId = bridge.id;
    for (const leg of legs) await ari.bridges.addChannel(bridgeId, leg.channel!.id);

    const silence = Buffer.alloc(160, 0xff);
    const ssrcs = legs.map(() => randomBytes(4).readUInt32BE(0) || 1);
    const deadline = Date.now() + timeoutMs;
    for (let n = 0; n < count || (Date.now() < deadline && legs.some((l) => l.received === 0)); n++) {
      legs.forEach((leg, i) => {
        const packet = encodeRtp({
          payloadType: PT_PCMU,
          marker: n === 0,
          sequenceNumber: (1000 + n) & 0xffff,
          timestamp: n * 160,
          ssrc: ssrcs[i]!,
          csrc: [],
          payload: silence,
        });
        leg.socket.send(packet, leg.peer!.port, leg.peer!.address);
      });
      await new Promise((r) => setTimeout(r, 20));
      if (n >= count && legs.every((l) => l.received > 0)) break;
    }
    await new Promise((r) => setTimeout(r, 100));
    const [a, b] = legs as [ProbeLeg, ProbeLeg];
    if (a.received > 0 && b.received > 0) {
      return {
        status: 'ok',
        what: `${what}: packets carried both ways through an externalMedia bridge (${b.received} and ${a.received} of ${count}+ returned)`,
      };
    }
    return {
      status: 'fail',
      what: `${what}: no RTP came back from Asterisk to ${config.asteramiskHost} (sent ${count}+ packets each way, received ${a.received}/${b.received})`,
      fix: `set ASTERAMISK_HOST to this machine's address as Asterisk sees it (now ${config.asteramiskHost}), and open UDP ${config.rtpPortMin}-${config.rtpPortMax} from Asterisk to this host and Asterisk's rtp.conf range to it`,
    };
  } catch (err) {
    return {
      status: 'fail',
      what: `${what}: ${why(err)}`,
      fix: 'check chan_rtp and res_ari_channels are loaded, and ASTERAMISK_HOST is an address',
    };
  } finally {
    for (const leg of legs) {
      if (leg.channel) await ari.channels.hangup(leg.channel.id).catch(() => {});
      leg.socket.close();
    }
    if (bridgeId) await ari.bridges.destroy(bridgeId).catch(() => {});
  }
}

/** `--tts`/`--stt` of doctor: an engine name, or `none` to skip; default the library's own choice. */
export interface SpeechChoice {
  tts?: TtsEngineName | 'none';
  stt?: SttEngineName | 'none';
}

const PROBE_TEXT = 'One two three.';
/** Hints of the STT probe: grammar engines (pocketsphinx) recognise only what they are told to expect. */
const PROBE_HINTS = ['one', 'two', 'three'];

/**
 * Synthesizes a sentence with the TTS engine and transcribes it with the STT engine that a Server
 * would pick from the same environment (OpenAI with OPENAI_API_KEY, Google TTS with
 * GOOGLE_APPLICATION_CREDENTIALS, else espeak-ng on the PATH; STT: OpenAI with OPENAI_API_KEY),
 * or the ones named. Each engine missing is a skipped line; one that fails is a failure.
 */
async function speechChecks(
  config: Config,
  choice: SpeechChoice,
  timeoutMs: number,
  report: (c: CheckResult) => CheckResult,
): Promise<void> {
  const signal = (): AbortSignal => AbortSignal.timeout(Math.max(timeoutMs, 15_000));
  const failed = (what: 'TTS' | 'STT', name: string | undefined, err: unknown): void => {
    report({
      status: 'fail',
      what: `${what}: ${name ?? 'the default engine'} failed: ${why(err)}`,
      fix:
        err instanceof ConfigError
          ? 'set the credential named above'
          : `check the ${name ?? what} engine's setup`,
    });
  };
  let audio: Int16Array | undefined;
  let tts: TtsEngine | undefined;
  try {
    // The same choice a Server makes, so the check speaks for what calls will get.
    tts = await chooseTts(config, { tts: choice.tts === 'none' ? false : choice.tts });
  } catch (err) {
    failed('TTS', choice.tts, err);
  }
  if (!tts) {
    if (choice.tts === undefined || choice.tts === 'none')
      report({
        status: 'skip',
        what:
          choice.tts === 'none'
            ? 'TTS: not checked (--tts none)'
            : 'TTS: no engine configured (say() will fail; sound: files still play)',
        fix: 'install espeak-ng, or set OPENAI_API_KEY or GOOGLE_APPLICATION_CREDENTIALS',
      });
  } else {
    const started = performance.now();
    try {
      const spoken = await tts.synthesize(PROBE_TEXT, { signal: signal() });
      if (spoken.length === 0) throw new Error('it returned no audio');
      audio = spoken;
      report({
        status: 'ok',
        what: `TTS: ${tts.name} synthesized ${(spoken.length / 8000).toFixed(1)} s of speech in ${Math.round(performance.now() - started)} ms`,
      });
    } catch (err) {
      audio = undefined;
      failed('TTS', tts.name, err);
    }
  }

  let stt: SttEngine | undefined;
  try {
    stt = chooseStt(config, { stt: choice.stt === 'none' ? false : choice.stt });
  } catch (err) {
    failed('STT', choice.stt, err);
    return;
  }
  if (!stt) {
    report({
      status: 'skip',
      what:
        choice.stt === 'none'
          ? 'STT: not checked (--stt none)'
          : 'STT: no engine configured (prompt() will fail; gather() and DTMF work)',
      fix: 'set OPENAI_API_KEY',
    });
    return;
  }
  const started = performance.now();
  try {
    const engine = stt;
    const pcm = audio ?? new Int16Array(8000);
    const text = await engine.transcribe(pcm, {
      language: 'en',
      hints: PROBE_HINTS,
      signal: signal(),
    });
    await engine.close?.();
    report({
      status: 'ok',
      what: `STT: ${engine.name} answered ${JSON.stringify(text)} in ${Math.round(performance.now() - started)} ms${audio ? ' (for the TTS sentence)' : ' (for 1 s of silence)'}`,
    });
  } catch (err) {
    failed('STT', stt.name, err);
  }
}
