import type { TextMessageReceivedEvent } from '../asterisk/ari-events.js';

/** A parsed SIP address (`"Alice" <sip:alice@127.0.0.1>` or a bare URI). */
export interface SipAddress {
  /** Display name, unquoted; '' when absent. */
  name: string;
  /** The URI without angle brackets or header parameters (`sip:alice@127.0.0.1`). */
  uri: string;
  /** The user part (`alice`, `+15551234567`). */
  user: string;
  /** The host part, '' when absent. */
  host: string;
}

/** Who sent a text: their normalised number, display name, raw URI and the endpoint it came through. */
export interface TextPeer {
  /** Normalised: phone numbers without spaces, dashes, dots or brackets; other users lower-cased. */
  number: string;
  name: string;
  /** The raw URI as it arrived (`sip:+15551234567@trunk.example.net`). */
  uri: string;
  /** The PJSIP endpoint the message came through (`alice`, or a trunk such as `pstn`). */
  endpoint: string;
}

/** An inbound SIP MESSAGE, ready for routing. */
export interface IncomingText {
  /** The number it was sent to (user part of To). */
  to: string;
  peer: TextPeer;
  body: string;
}

/**
 * Parses a name-addr (`"Name" <sip:user@host;params>;tag=x`) or a bare URI (`sip:user@host`,
 * `pjsip:user@host`). Returns undefined when there is no user part.
 */
export function parseSipAddress(value: string): SipAddress | undefined {
  const text = value.trim();
  let name = '';
  let uri = text;
  const open = text.indexOf('<');
  if (open >= 0) {
    const close = text.indexOf('>', open);
    if (close < 0) return undefined;
    name = text
      .slice(0, open)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .replace(/\\(.)/g, '$1');
    uri = text.slice(open + 1, close);
  } else {
    uri = text.split(';')[0]!;
  }
  uri = uri.split(';')[0]!.trim();
  const m = /^([a-z]+):([^@]*)(?:@([^:;>]*))?/i.exec(uri);
  if (!m?.[2]) return undefined;
  let user = m[2];
  try {
    user = decodeURIComponent(user);
  } catch {
    // A stray % in a user part: keep it as sent rather than lose the message.
  }
  return { name, uri, user, host: m[3] ?? '' };
}

/** `+1 (555) 123-4567` → `+15551234567`; `Alice` → `alice`. */
export function normalizeNumber(user: string): string {
  const trimmed = user.trim();
  if (/^\+?[\d\s().-]+$/.test(trimmed)) return trimmed.replace(/[\s().-]/g, '');
  return trimmed.toLowerCase();
}

/** The routing facts of a TextMessageReceived event, or undefined for one without a sender or recipient. */
export function parseIncomingText(event: TextMessageReceivedEvent): IncomingText | undefined {
  const from = parseSipAddress(event.message.from);
  const to = parseSipAddress(event.message.to);
  if (!from || !to) return undefined;
  return {
    to: normalizeNumber(to.user),
    peer: {
      number: normalizeNumber(from.user),
      name: from.name,
      uri: from.uri,
      endpoint: event.endpoint?.resource ?? from.user,
    },
    body: event.message.body,
  };
}
