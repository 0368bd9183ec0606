import { AmiActionError, InvalidInputError, MessageSendError } from '../errors.js';
import type { AmiClient } from './ami-client.js';

/** An out-of-dialog text to send. */
export interface OutgoingMessage {
  /** Where Asterisk sends it: `pjsip:<endpoint>`. */
  destination: string;
  /** The To URI when it differs from the endpoint's own (a number behind a trunk). */
  to?: string;
  /** The From URI (`sip:1000@pbx.example.com`). */
  from: string;
  body: string;
}

const ENDPOINT_DESTINATION = /^pjsip:[A-Za-z0-9_.+-]+$/;
const SIP_URI = /^sips?:[^\s<>"]+$/;

/**
 * Sends a SIP MESSAGE through AMI MessageSend. The body travels as Base64Body, so any UTF-8 text
 * (emoji, line breaks, `;`, even "\r\nAction: Originate") arrives exactly as given and can never
 * be read as AMI headers. A refused send rejects with {@link MessageSendError}.
 */
export async function sendMessage(ami: AmiClient, message: OutgoingMessage): Promise<void> {
  if (!ENDPOINT_DESTINATION.test(message.destination)) {
    throw new InvalidInputError(`Not a PJSIP message destination: ${JSON.stringify(message.destination)}`);
  }
  for (const uri of [message.from, ...(message.to ? [message.to] : [])]) {
    if (!SIP_URI.test(uri)) throw new InvalidInputError(`Not a SIP URI: ${JSON.stringify(uri)}`);
  }
  try {
    await ami.action({
      Action: 'MessageSend',
      Destination: message.destination,
      ...(message.to ? { To: message.to } : {}),
      From: message.from,
      Base64Body: Buffer.from(message.body, 'utf8').toString('base64'),
    });
  } catch (error) {
    if (error instanceof AmiActionError) {
      const reason = typeof error.response.Message === 'string' ? error.response.Message : error.message;
      throw new MessageSendError(message.to ?? message.destination, reason, { cause: error });
    }
    throw error;
  }
}
