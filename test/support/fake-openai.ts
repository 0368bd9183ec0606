/**
 * A local stand-in for the OpenAI REST API (node:http on 127.0.0.1, random port), speaking the shapes
 * the speech engines use:
 * - `POST /v1/audio/speech` (JSON) → raw 24 kHz 16-bit LE PCM of a sine tone, `msPerChar` per input char;
 * - `POST /v1/audio/transcriptions` (multipart/form-data) → `{"text": …}` after checking the file is a
 *   canonical 16-bit mono WAV;
 * - a wrong `Authorization` → 401 with OpenAI's error JSON (echoing the key, worse than OpenAI does,
 *   so tests prove the engines redact it); {@link FakeOpenAi.failNext} queues other errors (500…).
 * Every request is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** Parsed JSON body (speech). */
  json?: Record<string, unknown>;
  /** Multipart text fields (transcriptions). */
  fields?: Record<string, string>;
  /** Multipart file (transcriptions). */
  file?: { filename: string; contentType: string | undefined; bytes: Buffer };
  /** What the fake found wrong with the uploaded WAV, if anything. */
  wavProblem?: string;
}

export interface FakeOpenAiOptions {
  /** The only key accepted. Default `sk-test-fake-key-0123456789`. */
  apiKey?: string;
  /** Frequency of the tone returned by /audio/speech. Default 440 Hz. */
  toneHz?: number;
  /** Milliseconds of audio per input character. Default 50. */
  msPerChar?: number;
  /** Transcript returned by /audio/transcriptions. Default `hello world`. */
  transcript?: string | ((request: RecordedRequest) => string);
  /** When given, answers wait for this promise (to test aborts mid-request). */
  gate?: Promise<void>;
}

export interface FakeOpenAi {
  /** Base URL for the SDK, e.g. `http://127.0.0.1:41234/v1`. */
  readonly baseURL: string;
  readonly apiKey: string;
  readonly requests: RecordedRequest[];
  /** Resolves once `count` requests have arrived (recorded, before they are answered). */
  waitForRequests(count: number): Promise<void>;
  /** The next `count` requests answer `status` with an OpenAI-style error body. */
  failNext(status: number, count?: number, message?: string): void;
  close(): Promise<void>;
}

export const FAKE_PCM_RATE = 24_000;

/** `seconds` of a sine at `hz`, 24 kHz 16-bit LE, amplitude 0.5. */
export function tonePcm24k(hz: number, samples: number): Buffer {
  const out = Buffer.alloc(samples * 2);
  for (let n = 0; n < samples; n++) {
    out.writeInt16LE(Math.round(16384 * Math.sin((2 * Math.PI * hz * n) / FAKE_PCM_RATE)), n * 2);
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function openAiError(message: string, type: string, code: string | null): unknown {
  return { error: { message, type, param: null, code } };
}

/** Splits a multipart/form-data body into text fields and files. */
export function parseMultipart(
  body: Buffer,
  contentType: string,
): {
  fields: Record<string, string>;
  files: { name: string; filename: string; contentType?: string; bytes: Buffer }[];
} {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const fields: Record<string, string> = {};
  const files: { name: string; filename: string; contentType?: string; bytes: Buffer }[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    const partStart = start + delimiter.length;
    if (body.subarray(partStart, partStart + 2).toString() === '--') break; // closing delimiter
    const next = body.indexOf(delimiter, partStart);
    if (next === -1) break;
    // A part is CRLF, headers, CRLF CRLF, content, CRLF (before the next delimiter).
    const part = body.subarray(partStart + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    const content = part.subarray(headerEnd + 4);
    const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1];
    if (filename !== undefined)
      files.push({ name, filename, ...(type && { contentType: type }), bytes: content });
    else fields[name] = content.toString('utf8');
    start = next;
  }
  return { fields, files };
}

/** Checks, independently of the library's WAV code, that `bytes` is a canonical 16-bit 8 kHz mono WAV. */
export function wavProblem(bytes: Buffer): string | undefined {
  if (bytes.length < 44) return `too short (${bytes.length} bytes)`;
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE')
    return 'no RIFF/WAVE';
  if (bytes.readUInt32LE(4) !== bytes.length - 8) return 'RIFF size mismatch';
  if (bytes.toString('ascii', 12, 16) !== 'fmt ') return 'no fmt chunk first';
  if (bytes.readUInt16LE(20) !== 1) return 'not PCM';
  if (bytes.readUInt16LE(22) !== 1) return 'not mono';
  if (bytes.readUInt32LE(24) !== 8000) return `rate ${bytes.readUInt32LE(24)}`;
  if (bytes.readUInt16LE(34) !== 16) return 'not 16-bit';
  if (bytes.toString('ascii', 36, 40) !== 'data') return 'no data chunk';
  if (bytes.readUInt32LE(40) !== bytes.length - 44) return 'data size mismatch';
  return undefined;
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const apiKey = options.apiKey ?? 'sk-test-fake-key-0123456789';
  const toneHz = options.toneHz ?? 440;
  const msPerChar = options.msPerChar ?? 50;
  const requests: RecordedRequest[] = [];
  const failures: { status: number; message: string }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = (req.url ?? '').split('?')[0]!;
    const record: RecordedRequest = {
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
    };
    requests.push(record);
    for (const w of waiters.filter((w) => requests.length >= w.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    if (options.gate) await options.gate;

    const presented = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    if (presented !== apiKey) {
      sendJson(
        res,
        401,
        openAiError(
          `Incorrect API key provided: ${presented}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          'invalid_request_error',
          'invalid_api_key',
        ),
      );
      return;
    }
    const failure = failures.shift();
    if (failure) {
      // retry-after-ms: 0 keeps the SDK's retry (if any) immediate.
      sendJson(res, failure.status, openAiError(failure.message, 'server_error', null), {
        'retry-after-ms': '0',
      });
      return;
    }

    if (req.method === 'POST' && path === '/v1/audio/speech') {
      const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      record.json = json;
      if (typeof json.input !== 'string' || typeof json.model !== 'string' || json.voice === undefined) {
        sendJson(res, 400, openAiError('model, voice and input are required', 'invalid_request_error', null));
        return;
      }
      if (json.response_format !== 'pcm') {
        sendJson(
          res,
          400,
          openAiError('this fake only serves response_format pcm', 'invalid_request_error', null),
        );
        return;
      }
      const samples = Math.round((json.input.length * msPerChar * FAKE_PCM_RATE) / 1000);
      const pcm = tonePcm24k(toneHz, samples);
      res.writeHead(200, { 'content-type': 'audio/pcm', 'content-length': pcm.length });
      res.end(pcm);
      return;
    }

    if (req.method === 'POST' && path === '/v1/audio/transcriptions') {
      const { fields, files } = parseMultipart(body, req.headers['content-type'] ?? '');
      record.fields = fields;
      const file = files.find((f) => f.name === 'file');
      if (!file || !fields.model) {
        sendJson(res, 400, openAiError('file and model are required', 'invalid_request_error', null));
        return;
      }
      record.file = { filename: file.filename, contentType: file.contentType, bytes: file.bytes };
      const problem = wavProblem(file.bytes);
      if (problem) {
        record.wavProblem = problem;
        sendJson(res, 400, openAiError(`Invalid file format: ${problem}`, 'invalid_request_error', null));
        return;
      }
      const text =
        typeof options.transcript === 'function'
          ? options.transcript(record)
          : (options.transcript ?? 'hello world');
      sendJson(res, 200, { text });
      return;
    }

    sendJson(res, 404, openAiError(`Unknown route ${req.method} ${path}`, 'invalid_request_error', null));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, openAiError(String(error), 'server_error', null));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    apiKey,
    requests,
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ count, resolve }));
    },
    failNext(status, count = 1, message = 'The server had an error while processing your request.') {
      for (let i = 0; i < count; i++) failures.push({ status, message });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Audio measurements shared by the speech tests. */

/** Frequency of a (mostly) pure tone from its zero crossings, over `samples` at `rate`. */
export function zeroCrossingHz(samples: Int16Array, rate: number): number {
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) {
    if ((samples[i - 1]! < 0 && samples[i]! >= 0) || (samples[i - 1]! >= 0 && samples[i]! < 0)) crossings++;
  }
  return (crossings * rate) / (2 * samples.length);
}

/** Root mean square of the samples. */
export function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return samples.length === 0 ? 0 : Math.sqrt(sum / samples.length);
}

/** A sine at `hz`, `rate` samples per second, `count` samples, peak `amplitude`, starting at `phase` radians. */
export function sine(hz: number, rate: number, count: number, amplitude = 16384, phase = 0): Int16Array {
  const out = new Int16Array(count);
  for (let n = 0; n < count; n++)
    out[n] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * n) / rate + phase));
  return out;
}
