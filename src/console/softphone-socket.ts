/**
 * One browser softphone on the console's `/api/phone` WebSocket. Text frames are JSON commands
 * and events; binary frames are 20 ms µ-law audio, microphone → call and call → speaker.
 *
 * Browser → here: `{type:'dial',to}`, `{type:'keys',digits}`, `{type:'hangup'}`,
 * `{type:'text',to,body}`, and binary microphone frames (multiples of 160 bytes).
 * Here → browser: `ringing`, `answered`, `media` (a URI played), `ended` (Q.850 cause), `text`,
 * `error` (a command refused, with its reason), and binary frames of what the phone hears.
 */
import type { WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import type { Softphone, SoftphoneCall } from './softphone.js';

const FRAME_BYTES = 160;
/** Longest number, key string or text the page may send (the sandbox is not a place for floods). */
const MAX_FIELD = 1024;

type Command =
  | { type: 'dial'; to: string }
  | { type: 'keys'; digits: string }
  | { type: 'hangup' }
  | { type: 'text'; to: string; body: string };

/** Serves one softphone page until its socket closes; the call it holds is hung up then. */
export function serveSoftphone(socket: WebSocket, softphone: Softphone, logger: Logger): void {
  let call: SoftphoneCall | undefined;
  let undo: (() => void)[] = [];
  const send = (message: object) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };
  const fail = (message: string) => send({ type: 'error', message, inCall: call !== undefined });

  const offText = softphone.onText((text) => send({ type: 'text', ...text }));

  const dial = async (to: string) => {
    if (call) return fail('Already in a call: hang up first');
    let placed: SoftphoneCall;
    try {
      placed = await softphone.dial(to);
    } catch (error) {
      return fail(`The call to ${to} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    call = placed;
    send({ type: 'ringing', to, id: placed.id });
    undo = [
      placed.onAnswered(() => send({ type: 'answered' })),
      placed.onMedia((uri) => send({ type: 'media', uri })),
      placed.onAudio((ulaw) => {
        if (socket.readyState === socket.OPEN) socket.send(ulaw, { binary: true });
      }),
    ];
    void placed.ended().then(({ cause }) => {
      if (call !== placed) return;
      for (const u of undo) u();
      undo = [];
      call = undefined;
      send({ type: 'ended', cause });
    });
  };

  const run = async (command: Command) => {
    switch (command.type) {
      case 'dial':
        return dial(command.to);
      case 'keys':
        if (!call) return fail('No call: dial first');
        if (!/^[0-9*#A-D]+$/.test(command.digits)) return fail('Keys are 0-9, *, #, A-D');
        return call.press(command.digits);
      case 'hangup':
        return call?.hangup();
      case 'text':
        try {
          await softphone.sendText(command.to, command.body);
        } catch (error) {
          fail(`The text was not delivered: ${error instanceof Error ? error.message : String(error)}`);
        }
        return;
    }
  };

  socket.on('message', (data, isBinary) => {
    if (isBinary) {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      if (!call) return;
      for (let at = 0; at + FRAME_BYTES <= bytes.length; at += FRAME_BYTES) {
        call.sendAudio(bytes.subarray(at, at + FRAME_BYTES));
      }
      return;
    }
    const command = parseCommand(String(data));
    if (typeof command === 'string') return fail(command);
    run(command).catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'softphone command failed');
      fail(error instanceof Error ? error.message : String(error));
    });
  });
  socket.on('close', () => {
    offText();
    for (const u of undo) u();
    void call?.hangup();
  });
}

/** The command in a text frame, or why it is not one. */
function parseCommand(text: string): Command | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'Not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'Not a command';
  const m = value as Record<string, unknown>;
  const field = (name: string): string | undefined => {
    const v = m[name];
    return typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD ? v : undefined;
  };
  switch (m.type) {
    case 'dial': {
      const to = field('to');
      return to && /^[\w+*#.@-]+$/.test(to) ? { type: 'dial', to } : 'dial needs a number';
    }
    case 'keys': {
      const digits = field('digits');
      return digits ? { type: 'keys', digits } : 'keys needs digits';
    }
    case 'hangup':
      return { type: 'hangup' };
    case 'text': {
      const to = field('to');
      const body = field('body');
      return to && body ? { type: 'text', to, body } : 'text needs a number and a body';
    }
    default:
      return 'Unknown command';
  }
}
