import type { Config } from '../config.js';
import { childLogger, type Logger } from '../logger.js';
import { AmiClient } from './ami-client.js';
import { AriClient } from './ari-client.js';
import { PbxReadiness } from './pbx-readiness.js';
import { type AsteriskTlsOptions, readCaFile } from './tls.js';

/**
 * How the connections notice a dead Asterisk and come back. A PBX that stops answering without
 * closing its sockets (stopped with SIGSTOP, a blackholed port, a cut route) is noticed by the
 * ARI websocket ping and the AMI keep-alive Ping within `keepAliveIntervalMs + keepAliveTimeoutMs`
 * (15 s by default); both then reconnect until it answers again.
 */
export interface AsteriskConnectionTuning {
  /** Interval of the ARI websocket pings and of the AMI keep-alive Pings (ms). Default 10 000. */
  keepAliveIntervalMs?: number;
  /** A ping unanswered for this long (ms) means the connection is dead. Default 5 000. */
  keepAliveTimeoutMs?: number;
  /**
   * Time limit of each ARI request and AMI action, and of opening a connection (ms): a request to
   * a stopped Asterisk rejects with TimeoutError after it. Default 10 000.
   */
  requestTimeoutMs?: number;
  /** Delays between reconnection attempts of ARI and AMI. Default `{ initialMs: 250, maxMs: 10_000 }`. */
  reconnectBackoff?: { initialMs: number; maxMs: number };
  /** How long to wait for AMI `FullyBooted` after a login before assuming Asterisk booted (ms). Default 15 000. */
  bootWaitMs?: number;
  /**
   * Most HTTP connections to ARI at once (requests beyond it wait for a free one). Default 16.
   * Raise it for thousands of concurrent calls on a slow link (bench/ivr-load.ts uses 64 at 2000
   * calls); keep the total of all clients under http.conf's `sessionlimit` (default 100).
   */
  ariMaxConnections?: number;
}

/** Default of {@link AsteriskConnectionTuning.keepAliveIntervalMs}. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 10_000;
/** Default of {@link AsteriskConnectionTuning.keepAliveTimeoutMs}. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 5_000;

/**
 * The ARI and AMI connections to one Asterisk, built from a {@link Config}. The Runtime shares one
 * between a Server and the Communicators of a process (one Stasis app, one AMI login).
 */
export class AsteriskConnection {
  readonly ari: AriClient;
  readonly ami: AmiClient;
  readonly config: Config;
  private closing?: Promise<void>;

  /** Whether Asterisk is logged in to over AMI and fully booted. */
  readonly readiness: PbxReadiness;

  private constructor(config: Config, logger: Logger, tuning: AsteriskConnectionTuning = {}) {
    this.config = config;
    const requestTimeoutMs = tuning.requestTimeoutMs ?? 10_000;
    const keepAlive = {
      interval: tuning.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      timeout: tuning.keepAliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    };
    const tls = tlsOptions(config, logger);
    const scheme = config.ariTls ? 'https' : 'http';
    this.ari = new AriClient({
      url: `${scheme}://${hostForUrl(config.asteriskHost)}:${config.ariPort}`,
      username: config.ariUser,
      password: config.ariPassword,
      app: config.appName,
      requestTimeoutMs,
      connectTimeoutMs: requestTimeoutMs,
      ...(tuning.ariMaxConnections !== undefined ? { maxConnections: tuning.ariMaxConnections } : {}),
      pingIntervalMs: keepAlive.interval,
      pongTimeoutMs: keepAlive.timeout,
      ...(tuning.reconnectBackoff ? { reconnect: tuning.reconnectBackoff } : {}),
      ...(config.ariTls ? { tls } : {}),
      logger: childLogger(logger, { component: 'ari' }),
    });
    this.ami = new AmiClient({
      host: config.asteriskHost,
      port: config.amiPort,
      username: config.amiUser,
      password: config.amiPassword,
      actionTimeoutMs: requestTimeoutMs,
      // Only the `system` class: FullyBooted and Shutdown (PbxReadiness) are the only events the
      // Server and Communicator read from AMI; actions (dialplan, SendText, MessageSend) are answered
      // in their responses and list items, which Asterisk sends whatever the mask. Without a mask a
      // busy PBX sends ~15 call/dtmf/cdr events per call step, each parsed here for nothing.
      events: ['system'],
      keepAliveMs: keepAlive.interval,
      keepAliveTimeoutMs: keepAlive.timeout,
      ...(tuning.reconnectBackoff ? { reconnectBackoff: tuning.reconnectBackoff } : {}),
      ...(config.amiTls ? { tls } : {}),
      logger: childLogger(logger, { component: 'ami' }),
    });
    // Before connecting: the first login's FullyBooted comes right after the login response.
    this.readiness = new PbxReadiness(this.ami, {
      ...(tuning.bootWaitMs !== undefined ? { bootWaitMs: tuning.bootWaitMs } : {}),
      logger: childLogger(logger, { component: 'readiness' }),
    });
  }

  /**
   * Connects ARI and AMI. Rejects with AuthenticationError on wrong credentials and with
   * AsteriskConnectionError when Asterisk cannot be reached, after closing whatever did connect.
   */
  static async open(
    config: Config,
    logger: Logger,
    tuning: AsteriskConnectionTuning = {},
  ): Promise<AsteriskConnection> {
    const connection = new AsteriskConnection(config, logger, tuning);
    try {
      await Promise.all([connection.ari.connect(), connection.ami.connect()]);
    } catch (error) {
      await Promise.allSettled([connection.ari.close(), connection.ami.close()]);
      throw error;
    }
    return connection;
  }

  /** Closes both connections. Idempotent. */
  close(): Promise<void> {
    this.readiness.close();
    this.closing ??= Promise.allSettled([this.ari.close(), this.ami.close()]).then(() => undefined);
    return this.closing;
  }
}

/**
 * The TLS options of ARI and AMI: the CA file is read here, when the Server or Communicator
 * connects (a ConfigError names it if it became unreadable since the config was resolved).
 */
function tlsOptions(config: Config, logger: Logger): AsteriskTlsOptions {
  if (!config.ariTls && !config.amiTls) {
    if (config.tlsCaFile !== undefined || config.tlsServerName !== undefined) {
      // Info, not a warning: one environment may serve TLS and plain clients (the real-PBX tests do).
      logger.info(
        { tlsCaFile: config.tlsCaFile, tlsServerName: config.tlsServerName },
        'TLS options are set but ARI and AMI are plain (ASTERISK_ARI_TLS/ASTERISK_AMI_TLS off): they are not used',
      );
    }
    return {};
  }
  return {
    ...(config.tlsCaFile !== undefined ? { ca: readCaFile(config.tlsCaFile) } : {}),
    ...(config.tlsServerName !== undefined ? { servername: config.tlsServerName } : {}),
  };
}

/** An IPv6 address goes in brackets inside a URL. */
function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
