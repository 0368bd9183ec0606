import { AriHttpError, InvalidInputError, MessageSendError } from '../errors.js';
import type { AriClient } from './ari-client.js';

/** An out-of-dialog text to send. */
export interface OutgoingMessage {
  /**
   * Where Asterisk sends it: `pjsip:<endpoint>` (to the endpoint's contact), or
   * `pjsip:PJSIP/<number>@<trunk>` for a number behind a trunk endpoint (the trunk's contact with
   * the number as its user, in both the Request-URI and To). See {@link messageDestination}.
   */
  destination: string;
  /** The From URI (`sip:1000@pbx.example.com`). */
  from: string;
  body: string;
}

/**
 * The largest JSON body Asterisk's HTTP server reads (`MAX_CONTENT_LENGTH` in main/http.c); a
 * larger request is answered `413 Request body too large`.
 */
export const MAX_ARI_BODY_BYTES = 40_960;

const DESTINATION = /^pjsip:(?:[A-Za-z0-9_.+-]+|PJSIP\/[A-Za-z0-9+*#._-]+@[A-Za-z0-9_.+-]+)$/;
const DIAL_USER = /^[A-Za-z0-9+*#._-]+$/;
const SIP_URI = /^sips?:[^\s<>"]+$/;

/**
 * The MessageSend destination for a peer: the endpoint itself when the peer is that endpoint
 * (`pjsip:bob`), otherwise the peer's number at that endpoint (`pjsip:PJSIP/+15551234567@pstn`),
 * which Asterisk turns into the Request-URI `sip:+15551234567@<trunk contact host>`.
 */
export function messageDestination(number: string, endpoint: string): string {
  if (number === endpoint.toLowerCase()) return `pjsip:${endpoint}`;
  if (!DIAL_USER.test(number)) {
    throw new InvalidInputError(
      `Cannot text ${JSON.stringify(number)} through a trunk: not a dialable number`,
    );
  }
  return `pjsip:PJSIP/${number}@${endpoint}`;
}

/**
 * Sends a SIP MESSAGE through ARI (`PUT /endpoints/sendMessage`) with the fields in a JSON body,
 * so any UTF-8 text (emoji, line breaks, `;`, even "\r\nAction: Originate") of up to about 40 KB
 * arrives exactly as given, in one MESSAGE.
 *
 * Not AMI MessageSend: Asterisk reads an AMI line into a 1024-byte buffer, so a MessageSend body
 * over 756 bytes (as Base64Body) is refused with "Failed to parse message: line too long". Asterisk
 * sends it as `Content-Type: text/plain` (no charset parameter) from `from`.
 *
 * @throws {InvalidInputError} for a malformed destination or From, or a body too large for ARI.
 * @throws {MessageSendError} when Asterisk refuses it (`Endpoint not found`: an unknown endpoint,
 *   or one without a contact). Delivery itself is not confirmed: the phone's answer is not reported.
 */
export async function sendMessage(ari: AriClient, message: OutgoingMessage): Promise<void> {
  if (!DESTINATION.test(message.destination)) {
    throw new InvalidInputError(`Not a PJSIP message destination: ${JSON.stringify(message.destination)}`);
  }
  if (!SIP_URI.test(message.from)) {
    throw new InvalidInputError(`Not a SIP URI: ${JSON.stringify(message.from)}`);
  }
  const body = { to: message.destination, from: message.from, body: message.body };
  const size = Buffer.byteLength(JSON.stringify(body));
  if (size > MAX_ARI_BODY_BYTES) {
    throw new InvalidInputError(
      `A text of ${Buffer.byteLength(message.body)} bytes is too long for Asterisk (its HTTP server reads at most ${MAX_ARI_BODY_BYTES} bytes per request); send it in parts`,
    );
  }
  try {
    await ari.request('PUT', '/endpoints/sendMessage', { body });
  } catch (error) {
    if (error instanceof AriHttpError) {
      throw new MessageSendError(message.destination, error.asteriskMessage, { cause: error });
    }
    throw error;
  }
}
