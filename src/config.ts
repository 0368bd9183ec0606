import { inspect } from 'node:util';
import { z } from 'zod';
import { readCaFile } from './asterisk/tls.js';
import { ConfigError } from './errors.js';

/**
 * Everything asteramisk can be configured with. Resolved by {@link resolveConfig} as: options passed
 * in code, over environment variables (names in {@link ENV_NAMES}), over defaults.
 */
export interface Config {
  /** Host of Asterisk's ARI and AMI. Env `ASTERISK_HOST`, default `127.0.0.1`. */
  asteriskHost: string;
  /** ARI HTTP port. Env `ASTERISK_ARI_PORT`, default 8088, or 8089 (http.conf `tlsbindaddr`) with `ariTls`. */
  ariPort: number;
  /** ARI user (ari.conf). Env `ASTERISK_ARI_USER`. Required. */
  ariUser: string;
  /** ARI password. Env `ASTERISK_ARI_PASS`. Required; never logged. */
  ariPassword: string;
  /**
   * Speak HTTPS/WSS to ARI (http.conf `tlsenable`), verifying Asterisk's certificate. Env
   * `ASTERISK_ARI_TLS`, default false.
   */
  ariTls: boolean;
  /** AMI TCP port. Env `ASTERISK_AMI_PORT`, default 5038, or 5039 (manager.conf `tlsbindaddr`) with `amiTls`. */
  amiPort: number;
  /**
   * Speak TLS to AMI (manager.conf `tlsenable`), verifying Asterisk's certificate. Env
   * `ASTERISK_AMI_TLS`, default false.
   */
  amiTls: boolean;
  /**
   * A PEM file of CA certificates trusted, for ARI and AMI over TLS, in addition to Node's root CAs:
   * a private CA, or Asterisk's self-signed certificate itself. Read when a Server or Communicator
   * is created. Env `ASTERISK_TLS_CA_FILE`.
   */
  tlsCaFile: string | undefined;
  /**
   * The name Asterisk's certificate must be issued for, when it differs from `asteriskHost` (e.g.
   * connecting by IP to a certificate for `pbx.example.com`). Env `ASTERISK_TLS_SERVER_NAME`.
   */
  tlsServerName: string | undefined;
  /** AMI user (manager.conf). Env `ASTERISK_AMI_USER`. Required. */
  amiUser: string;
  /** AMI secret. Env `ASTERISK_AMI_PASS`. Required; never logged. */
  amiPassword: string;
  /** Stasis application name. Env `ASTERAMISK_APP`, default `asteramisk-<random>`. */
  appName: string;
  /** Dialplan context where registered numbers receive calls. Env `ASTERISK_INCOMING_CALL_CONTEXT`. */
  incomingCallContext: string;
  /** Dialplan context where registered numbers receive SIP MESSAGEs. Must differ from the call context. */
  incomingTextContext: string;
  /** PJSIP endpoint used to reach the outside world. Env `ASTERISK_PSTN_ENDPOINT`. */
  pstnEndpoint: string;
  /** Address Asterisk uses to reach this process's RTP sockets. Env `ASTERAMISK_HOST`. */
  asteramiskHost: string;
  /** Address the RTP sockets bind to. Env `RTP_BIND_ADDRESS`, default `127.0.0.1`. */
  rtpBindAddress: string;
  /** Lowest local RTP port. Env `RTP_PORT_MIN`, default 30000. */
  rtpPortMin: number;
  /** Highest local RTP port. Env `RTP_PORT_MAX`, default 31000. */
  rtpPortMax: number;
  /** Default caller-ID number and local number of outbound texts. Env `SYSTEM_PHONE_NUMBER`. */
  systemPhoneNumber: string | undefined;
  /** Default caller-ID name. Env `SYSTEM_NAME`, default `Asteramisk`. */
  systemName: string;
  /** Default TTS voice. Env `SYSTEM_VOICE`. */
  systemVoice: string;
  /** Calls handled at once before new calls continue in the dialplan. Env `MAX_CONCURRENT_CALLS`. */
  maxConcurrentCalls: number;
  /** Text conversations at once. Env `MAX_CONCURRENT_CONVERSATIONS`. */
  maxConcurrentConversations: number;
  /** Seconds an outbound call may ring. Env `OUTBOUND_CALL_TIMEOUT`, default 30. */
  outboundCallTimeout: number;
  /** `*` (voice) or `*`/`back` (text) inside a menu returns to the parent menu. Env `GO_BACK_ON_STAR`. */
  goBackOnStar: boolean;
  /** Consecutive empty inputs before InputTimeoutError. Env `MAX_NO_INPUT_ATTEMPTS`, default 3. */
  maxNoInputAttempts: number;
  /** OpenAI key for TTS, transcription and agents. Env `OPENAI_API_KEY`; never logged. */
  openaiApiKey: string | undefined;
  /** Realtime model of connectOpenAIAgent. Env `OPENAI_REALTIME_MODEL`, default `gpt-realtime`. */
  openaiRealtimeModel: string;
}

/** Options accepted in code: any subset of {@link Config}. */
export type ConfigOptions = Partial<Config>;

/** The environment variable behind each field. */
export const ENV_NAMES: Readonly<Record<keyof Config, string>> = {
  asteriskHost: 'ASTERISK_HOST',
  ariPort: 'ASTERISK_ARI_PORT',
  ariUser: 'ASTERISK_ARI_USER',
  ariPassword: 'ASTERISK_ARI_PASS',
  ariTls: 'ASTERISK_ARI_TLS',
  amiPort: 'ASTERISK_AMI_PORT',
  amiTls: 'ASTERISK_AMI_TLS',
  tlsCaFile: 'ASTERISK_TLS_CA_FILE',
  tlsServerName: 'ASTERISK_TLS_SERVER_NAME',
  amiUser: 'ASTERISK_AMI_USER',
  amiPassword: 'ASTERISK_AMI_PASS',
  appName: 'ASTERAMISK_APP',
  incomingCallContext: 'ASTERISK_INCOMING_CALL_CONTEXT',
  incomingTextContext: 'ASTERISK_INCOMING_TEXT_CONTEXT',
  pstnEndpoint: 'ASTERISK_PSTN_ENDPOINT',
  asteramiskHost: 'ASTERAMISK_HOST',
  rtpBindAddress: 'RTP_BIND_ADDRESS',
  rtpPortMin: 'RTP_PORT_MIN',
  rtpPortMax: 'RTP_PORT_MAX',
  systemPhoneNumber: 'SYSTEM_PHONE_NUMBER',
  systemName: 'SYSTEM_NAME',
  systemVoice: 'SYSTEM_VOICE',
  maxConcurrentCalls: 'MAX_CONCURRENT_CALLS',
  maxConcurrentConversations: 'MAX_CONCURRENT_CONVERSATIONS',
  outboundCallTimeout: 'OUTBOUND_CALL_TIMEOUT',
  goBackOnStar: 'GO_BACK_ON_STAR',
  maxNoInputAttempts: 'MAX_NO_INPUT_ATTEMPTS',
  openaiApiKey: 'OPENAI_API_KEY',
  openaiRealtimeModel: 'OPENAI_REALTIME_MODEL',
};

const SECRET_FIELDS: ReadonlySet<keyof Config> = new Set(['ariPassword', 'amiPassword', 'openaiApiKey']);

const port = z.number().int().min(1).max(65535);
const nonEmpty = z.string().trim().min(1);

const schema = z.object({
  asteriskHost: nonEmpty,
  ariPort: port,
  ariUser: nonEmpty,
  ariPassword: z.string().min(1),
  ariTls: z.boolean(),
  amiPort: port,
  amiTls: z.boolean(),
  tlsCaFile: z.string().trim().min(1).optional(),
  tlsServerName: z
    .string()
    .regex(/^[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9])?$/)
    .optional(),
  amiUser: nonEmpty,
  amiPassword: z.string().min(1),
  appName: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  incomingCallContext: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  incomingTextContext: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  pstnEndpoint: nonEmpty,
  asteramiskHost: nonEmpty,
  rtpBindAddress: nonEmpty,
  rtpPortMin: port,
  rtpPortMax: port,
  systemPhoneNumber: z.string().optional(),
  systemName: z.string(),
  systemVoice: z.string(),
  maxConcurrentCalls: z.number().int().min(1),
  maxConcurrentConversations: z.number().int().min(1),
  outboundCallTimeout: z.number().positive(),
  goBackOnStar: z.boolean(),
  maxNoInputAttempts: z.number().int().min(1),
  openaiApiKey: z.string().optional(),
  openaiRealtimeModel: nonEmpty,
});

/** How to fix a bad value, per field; the generic advice is used for the rest. */
const FIXES: Partial<Record<keyof Config, string>> = {
  ariUser: 'set ASTERISK_ARI_USER (or pass ariUser) to a user of ari.conf',
  ariPassword: 'set ASTERISK_ARI_PASS (or pass ariPassword) to that user’s password in ari.conf',
  amiUser: 'set ASTERISK_AMI_USER (or pass amiUser) to a user of manager.conf',
  amiPassword: 'set ASTERISK_AMI_PASS (or pass amiPassword) to that user’s secret in manager.conf',
  ariPort:
    'use a TCP port from 1 to 65535 (Asterisk’s http.conf bindport, usually 8088; with TLS its tlsbindaddr port, usually 8089)',
  amiPort:
    'use a TCP port from 1 to 65535 (manager.conf port, usually 5038; with TLS its tlsbindaddr port, usually 5039)',
  ariTls: 'use true or false (1/0, yes/no, on/off)',
  amiTls: 'use true or false (1/0, yes/no, on/off)',
  tlsCaFile: 'set ASTERISK_TLS_CA_FILE (or pass tlsCaFile) to the path of a PEM file of CA certificates',
  tlsServerName:
    'set ASTERISK_TLS_SERVER_NAME (or pass tlsServerName) to a DNS name of Asterisk’s certificate, e.g. pbx.example.com',
  rtpPortMin: 'use a UDP port from 1 to 65535, below RTP_PORT_MAX',
  rtpPortMax: 'use a UDP port from 1 to 65535, above RTP_PORT_MIN',
  appName: 'use letters, digits, ".", "_" or "-" only',
  incomingCallContext: 'use a dialplan context name of letters, digits, ".", "_" or "-"',
  incomingTextContext: 'use a dialplan context name of letters, digits, ".", "_" or "-"',
};

const DEFAULTS = {
  asteriskHost: '127.0.0.1',
  ariTls: false,
  amiTls: false,
  incomingCallContext: 'asteramisk-call',
  incomingTextContext: 'asteramisk-text',
  pstnEndpoint: 'pstn',
  asteramiskHost: '127.0.0.1',
  rtpBindAddress: '127.0.0.1',
  rtpPortMin: 30000,
  rtpPortMax: 31000,
  systemName: 'Asteramisk',
  systemVoice: 'alloy',
  maxConcurrentCalls: 100,
  maxConcurrentConversations: 100,
  outboundCallTimeout: 30,
  goBackOnStar: true,
  maxNoInputAttempts: 3,
  openaiRealtimeModel: 'gpt-realtime',
} satisfies Partial<Config>;

const NUMBER_FIELDS: ReadonlySet<keyof Config> = new Set([
  'ariPort',
  'amiPort',
  'rtpPortMin',
  'rtpPortMax',
  'maxConcurrentCalls',
  'maxConcurrentConversations',
  'outboundCallTimeout',
  'maxNoInputAttempts',
]);
const BOOLEAN_FIELDS: ReadonlySet<keyof Config> = new Set(['ariTls', 'amiTls', 'goBackOnStar']);
/** Optional paths and names: an empty environment variable means "not set". */
const UNSET_WHEN_EMPTY: ReadonlySet<keyof Config> = new Set(['tlsCaFile', 'tlsServerName']);

/** Ports used when none is given: Asterisk's defaults for the plain and the TLS listeners. */
const DEFAULT_PORTS = { ari: { plain: 8088, tls: 8089 }, ami: { plain: 5038, tls: 5039 } } as const;

/** Shows a value in an error message: secrets as `[redacted]`, the rest as JSON. */
function showValue(field: keyof Config, value: unknown): string {
  if (SECRET_FIELDS.has(field) && value !== undefined && value !== '') return '[redacted]';
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function parseEnvValue(field: keyof Config, raw: string): unknown {
  if (UNSET_WHEN_EMPTY.has(field) && raw.trim() === '') return undefined;
  if (NUMBER_FIELDS.has(field)) {
    const trimmed = raw.trim();
    // Number('') is 0 and Number('12abc') is NaN: keep the raw string so the error shows it.
    return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : raw;
  }
  if (BOOLEAN_FIELDS.has(field)) {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
    return raw;
  }
  return raw;
}

function randomAppName(): string {
  return `asteramisk-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Resolves and validates the configuration: `options` over `env` over defaults. Call it when a
 * Server or Communicator is created, never at import time, so settings made in code count.
 *
 * @throws {ConfigError} naming the field, the bad value (secrets redacted) and how to fix it.
 */
export function resolveConfig(options: ConfigOptions = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const merged: Record<string, unknown> = { ...DEFAULTS, appName: randomAppName() };
  for (const field of Object.keys(ENV_NAMES) as (keyof Config)[]) {
    const raw = env[ENV_NAMES[field]];
    if (raw !== undefined) merged[field] = parseEnvValue(field, raw);
  }
  for (const [field, value] of Object.entries(options)) {
    if (value !== undefined) merged[field] = value;
  }
  // No port given: the TLS listener's default port when TLS is on (an invalid flag fails below).
  merged.ariPort ??= DEFAULT_PORTS.ari[merged.ariTls === true ? 'tls' : 'plain'];
  merged.amiPort ??= DEFAULT_PORTS.ami[merged.amiTls === true ? 'tls' : 'plain'];

  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = String(issue.path[0]) as keyof Config;
    const fix = FIXES[field] ?? `pass a valid ${field} or set ${ENV_NAMES[field]}`;
    const value = merged[field];
    const what =
      value === undefined || value === '' ? 'is missing' : `is invalid: ${showValue(field, value)}`;
    throw new ConfigError(field, `Config ${field} (${ENV_NAMES[field]}) ${what}; ${fix}.`);
  }
  const config = result.data as Config;

  if (config.incomingCallContext === config.incomingTextContext) {
    throw new ConfigError(
      'incomingTextContext',
      `Config incomingTextContext (ASTERISK_INCOMING_TEXT_CONTEXT) equals incomingCallContext: both are ` +
        `${JSON.stringify(config.incomingCallContext)}; texts would be routed as calls. Use two different contexts.`,
    );
  }
  if (config.rtpPortMin > config.rtpPortMax) {
    throw new ConfigError(
      'rtpPortMin',
      `Config rtpPortMin (RTP_PORT_MIN) ${config.rtpPortMin} is above rtpPortMax (RTP_PORT_MAX) ${config.rtpPortMax}; ` +
        'make RTP_PORT_MIN <= RTP_PORT_MAX.',
    );
  }
  // Read now, so a missing or broken CA file is a ConfigError at creation, not a failed connection.
  if (config.tlsCaFile !== undefined) readCaFile(config.tlsCaFile);
  return hideSecrets(config);
}

/** Returns a copy of `config` whose secrets do not show in JSON.stringify, util.inspect or template strings. */
function hideSecrets(config: Config): Config {
  const shown = (): Record<string, unknown> => redactConfig(config);
  const copy = { ...config };
  // Non-enumerable so spreading or iterating a Config never trips over them.
  Object.defineProperties(copy, {
    toJSON: { value: shown, enumerable: false },
    [inspect.custom]: { value: () => shown(), enumerable: false },
    toString: { value: () => JSON.stringify(shown()), enumerable: false },
  });
  return copy;
}

/** The config as a plain object safe to log: secrets replaced by `[redacted]`. */
export function redactConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, SECRET_FIELDS.has(k as keyof Config) && v ? '[redacted]' : v]),
  );
}
