/**
 * What the web console's browser softphone needs from a phone network: dial a number, press keys,
 * carry 20 ms µ-law frames both ways, send and receive texts. The sandbox implements it over the
 * simulator (`simulatorSoftphone` in src/sandbox/sim-softphone.ts), so a developer can try their
 * handlers from a browser with no PBX and no SIP client.
 */

/** A call the softphone placed. */
export interface SoftphoneCall {
  /** The PBX channel id of the call (as the app's VoiceUI sees it). */
  readonly id: string;
  /** Whether the app answered. */
  readonly answered: boolean;
  /** Presses keys (RFC 4733 events), one per character. */
  press(digits: string): Promise<void>;
  /** Sends one 20 ms frame (160 bytes of µ-law) from the microphone. */
  sendAudio(ulaw: Buffer): void;
  /** Calls `listener` with every 20 ms µ-law frame the phone hears; returns the undo. */
  onAudio(listener: (ulaw: Buffer) => void): () => void;
  /** Calls `listener` with every media URI played to the phone (`sound:…`); returns the undo. */
  onMedia(listener: (uri: string) => void): () => void;
  /** Calls `listener` once when the app answers (at once if it already has); returns the undo. */
  onAnswered(listener: () => void): () => void;
  /** Resolves when the call ends, with the Q.850 cause. */
  ended(): Promise<{ cause: number }>;
  /** Hangs up (idempotent). */
  hangup(): Promise<void>;
}

/** A text the network delivered to the softphone's user. */
export interface SoftphoneText {
  from: string;
  body: string;
  /** Sent inside a call (in-dialog) rather than as a standalone message. */
  inCall: boolean;
}

/** The phone network behind the console's softphone. */
export interface Softphone {
  /** Who the softphone is (its endpoint and caller number, e.g. `alice`). */
  readonly identity: string;
  /** Places a call to `to`; rejects with an Error naming why when the network refuses it. */
  dial(to: string): Promise<SoftphoneCall>;
  /** Sends a text from {@link identity} to `to`. */
  sendText(to: string, body: string): Promise<void>;
  /** Calls `listener` with every text sent to {@link identity}; returns the undo. */
  onText(listener: (text: SoftphoneText) => void): () => void;
}
