/**
 * The one error hierarchy of asteramisk. Every error the library throws on purpose is an
 * {@link AsteramiskError}, so `catch (e) { if (e instanceof AsteramiskError) … }` separates our
 * failures from bugs. Each subclass has a stable `code` string for logs and switch statements.
 */

/** Base class of every error asteramisk throws on purpose. */
export class AsteramiskError extends Error {
  /** Stable machine-readable code, e.g. `HANGUP` or `ARI_HTTP`. */
  readonly code: string;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options?.code ?? 'ASTERAMISK';
  }
}

/** The call or conversation ended (the far end hung up, or it was hung up) while you awaited. */
export class HangupError extends AsteramiskError {
  constructor(message = 'The call or conversation has ended', options?: { cause?: unknown }) {
    super(message, { ...options, code: 'HANGUP' });
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'TIMEOUT' });
  }
}

/** The caller gave no input for the configured number of consecutive attempts. */
export class InputTimeoutError extends AsteramiskError {
  constructor(message = 'No input was received', options?: { cause?: unknown }) {
    super(message, { ...options, code: 'INPUT_TIMEOUT' });
  }
}

/** The caller asked to go back (`*` on voice, `*` or `back` on text) inside a menu callback. */
export class GoBackError extends AsteramiskError {
  constructor(message = 'The caller asked to go back', options?: { cause?: unknown }) {
    super(message, { ...options, code: 'GO_BACK' });
  }
}

/** Asterisk could not be reached, or the connection to it was lost. */
export class AsteriskConnectionError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, { cause: options?.cause, code: options?.code ?? 'ASTERISK_CONNECTION' });
  }
}

/** Asterisk refused the credentials (ARI 401, AMI `Authentication failed`). Never retried silently. */
export class AuthenticationError extends AsteriskConnectionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'AUTHENTICATION' });
  }
}

/**
 * Why a TLS connection to Asterisk was refused by this side (or could not be set up):
 * - `unknown-ca`: the certificate is not signed by a trusted CA (self-signed, or a private CA that
 *   is not in `tlsCaFile`);
 * - `hostname-mismatch`: the certificate does not name the host connected to (or `tlsServerName`);
 * - `expired` / `not-yet-valid`: outside the certificate's validity (check both clocks);
 * - `not-tls`: the port does not speak TLS (a plain ARI/AMI port);
 * - `handshake`: any other handshake failure (protocol version, ciphers, a revoked or bad certificate).
 */
export type TlsFailureReason =
  | 'unknown-ca'
  | 'hostname-mismatch'
  | 'expired'
  | 'not-yet-valid'
  | 'not-tls'
  | 'handshake';

/**
 * A TLS connection to Asterisk (ARI https/wss, AMI over TLS) failed: the certificate was not
 * trusted, or the handshake failed. `reason` says which; `tlsCode` is Node's/OpenSSL's code (e.g.
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`). Never an {@link AuthenticationError}: no credential was sent.
 */
export class TlsError extends AsteriskConnectionError {
  readonly reason: TlsFailureReason;
  readonly tlsCode: string | undefined;

  constructor(message: string, reason: TlsFailureReason, options?: { cause?: unknown; tlsCode?: string }) {
    super(message, { cause: options?.cause, code: 'TLS' });
    this.reason = reason;
    this.tlsCode = options?.tlsCode;
  }
}

/** The configuration is invalid. The message names the field, the (redacted) value and the fix. */
export class ConfigError extends AsteramiskError {
  /** The configuration field at fault, e.g. `ariPassword`. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'CONFIG' });
    this.field = field;
  }
}

/** A value that must not reach Asterisk as given (a CR/LF in an AMI header, an unsafe dial string…). */
export class InvalidInputError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'INVALID_INPUT' });
  }
}

/** Why an outbound call did not connect. */
export type CallFailureReason = 'busy' | 'no-answer' | 'congestion' | 'unreachable' | 'cancelled' | 'failed';

/** An outbound call was not answered. `hangupCause` is the Q.850 hangup cause when Asterisk gave one. */
export class CallFailedError extends AsteramiskError {
  readonly reason: CallFailureReason;
  readonly hangupCause?: number;
  readonly causeText?: string;

  constructor(reason: CallFailureReason, message: string, details?: { cause?: number; causeText?: string }) {
    super(message, { code: 'CALL_FAILED' });
    this.reason = reason;
    if (details?.cause !== undefined) this.hangupCause = details.cause;
    if (details?.causeText !== undefined) this.causeText = details.causeText;
  }
}

/**
 * ARI answered a request with an HTTP error. `status` is the HTTP status (404 channel gone, 409
 * duplicate id, 422 not in Stasis…), `asteriskMessage` the `message` (or `error`) of Asterisk's body.
 */
export class AriHttpError extends AsteramiskError {
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly asteriskMessage: string;

  constructor(status: number, method: string, path: string, asteriskMessage: string) {
    super(`ARI ${method} ${path} failed with ${status}: ${asteriskMessage}`, { code: 'ARI_HTTP' });
    this.status = status;
    this.method = method;
    this.path = path;
    this.asteriskMessage = asteriskMessage;
  }
}

/** 404 from ARI: the channel, bridge, playback or recording no longer exists. */
export class AriNotFoundError extends AriHttpError {}

/** 409 from ARI: an object with that id or name already exists. */
export class AriConflictError extends AriHttpError {}

/** 422 from ARI: the object is in the wrong state (e.g. `Channel not in Stasis application`). */
export class AriStateError extends AriHttpError {}

/** A websocket frame that is not a valid ARI event: bad JSON, no `type`, or a known type missing a field. */
export class AriEventParseError extends AsteramiskError {
  /** The start of the offending frame (at most 500 characters), for logs. */
  readonly frame: string;

  constructor(message: string, frame: string) {
    super(message, { code: 'ARI_EVENT_MALFORMED' });
    this.frame = frame.length > 500 ? `${frame.slice(0, 500)}…` : frame;
  }
}

/** A listener of the client threw or rejected; the client reports it and goes on. */
export class AriListenerError extends AsteramiskError {
  /** The event the listener was called for. */
  readonly eventName: string;

  constructor(eventName: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`A listener of '${eventName}' threw: ${why}`, { cause, code: 'ARI_LISTENER' });
    this.eventName = eventName;
  }
}

/** An AMI action was answered with `Response: Error`. `response` holds every header Asterisk sent. */
export class AmiActionError extends AsteramiskError {
  readonly action: string;
  readonly response: Readonly<Record<string, string | string[]>>;

  constructor(action: string, message: string, response: Readonly<Record<string, string | string[]>>) {
    super(`AMI ${action} failed: ${message}`, { code: 'AMI_ACTION' });
    this.action = action;
    this.response = response;
  }
}

/** A bounded resource ran out: the RTP port range, the concurrent-call limit… */
export class ResourceExhaustedError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'RESOURCE_EXHAUSTED' });
  }
}

/** Setting up the media bridge failed; `step` says where, `cause` holds the underlying error. */
export class MediaSetupError extends AsteramiskError {
  readonly step: string;

  constructor(channelId: string, step: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`Could not set up the media of channel ${channelId}: ${step} failed: ${why}`, {
      cause,
      code: 'MEDIA_SETUP',
    });
    this.step = step;
  }
}

/**
 * The media worker (the thread that owns the RTP sockets, the pacer and the G.711 coding) threw or
 * exited. The calls whose media it carried end with this error; the process and other workers
 * carry on, and the next call starts a new worker.
 */
export class MediaWorkerError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'MEDIA_WORKER' });
  }
}

/** A speech engine (TTS or STT) failed: the message says which engine and why; `cause` holds its error. */
export class SpeechEngineError extends AsteramiskError {
  /** The engine's name, e.g. `openai-tts`. */
  readonly engine: string;

  constructor(engine: string, message: string, options?: { cause?: unknown }) {
    super(`${engine}: ${message}`, { ...options, code: 'SPEECH_ENGINE' });
    this.engine = engine;
  }
}

/** A SIP MESSAGE Asterisk refused to send (unknown endpoint, no contact, unknown technology…). */
export class MessageSendError extends AsteramiskError {
  /** Asterisk's reason, e.g. `Message failed to send.` */
  readonly asteriskMessage: string;

  constructor(destination: string, asteriskMessage: string, options?: { cause?: unknown }) {
    super(`Sending a text to ${destination} failed: ${asteriskMessage}`, {
      ...options,
      code: 'MESSAGE_SEND',
    });
    this.asteriskMessage = asteriskMessage;
  }
}

/** The realtime model could not be reached, refused the session, or dropped it. */
export class RealtimeConnectionError extends AsteramiskError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'REALTIME_CONNECTION' });
  }
}
