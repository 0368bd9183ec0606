import type { Config } from '../config.js';
import { childLogger, type Logger } from '../logger.js';
import { AmiClient } from './ami-client.js';
import { AriClient } from './ari-client.js';

/**
 * The ARI and AMI connections to one Asterisk, built from a {@link Config}. The Runtime shares one
 * between a Server and the Communicators of a process (one Stasis app, one AMI login).
 */
export class AsteriskConnection {
  readonly ari: AriClient;
  readonly ami: AmiClient;
  readonly config: Config;
  private closing?: Promise<void>;

  private constructor(config: Config, logger: Logger) {
    this.config = config;
    const scheme = config.ariTls ? 'https' : 'http';
    this.ari = new AriClient({
      url: `${scheme}://${config.asteriskHost}:${config.ariPort}`,
      username: config.ariUser,
      password: config.ariPassword,
      app: config.appName,
      logger: childLogger(logger, { component: 'ari' }),
    });
    this.ami = new AmiClient({
      host: config.asteriskHost,
      port: config.amiPort,
      username: config.amiUser,
      password: config.amiPassword,
      logger: childLogger(logger, { component: 'ami' }),
    });
  }

  /**
   * Connects ARI and AMI. Rejects with AuthenticationError on wrong credentials and with
   * AsteriskConnectionError when Asterisk cannot be reached, after closing whatever did connect.
   */
  static async open(config: Config, logger: Logger): Promise<AsteriskConnection> {
    const connection = new AsteriskConnection(config, logger);
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
    this.closing ??= Promise.allSettled([this.ari.close(), this.ami.close()]).then(() => undefined);
    return this.closing;
  }
}
