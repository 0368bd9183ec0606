/**
 * A real gRPC server (@grpc/grpc-js, insecure, 127.0.0.1, random port) implementing
 * `google.cloud.texttospeech.v1.TextToSpeech/SynthesizeSpeech` from the .proto files shipped inside
 * the installed @google-cloud/text-to-speech (its google/api imports come from google-gax's protos).
 *
 * Like the real service, both LINEAR16 and MULAW answers are WAV files. The LINEAR16 one carries an
 * extra `LIST` chunk before `data` (by default) so a client that assumes a 44-byte header fails.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { encodeMulaw } from '../../src/media/g711.js';

export interface RecordedSynthesis {
  text: string | undefined;
  voiceName: string;
  languageCode: string;
  audioEncoding: string;
  sampleRateHertz: number;
  metadata: Record<string, unknown>;
}

export interface FakeGoogleTtsOptions {
  /** Frequency of the returned tone. Default 440 Hz. */
  toneHz?: number;
  /** Milliseconds of audio per input character. Default 50. */
  msPerChar?: number;
  /** Put a LIST chunk between `fmt ` and `data` in LINEAR16 answers. Default true. */
  listChunk?: boolean;
  /** Answer at this rate instead of the requested one (to exercise resampling). */
  answerRate?: number;
}

export interface FakeGoogleTts {
  readonly port: number;
  readonly requests: RecordedSynthesis[];
  /** The next call fails with this gRPC status code and details. */
  failNext(code: grpc.status, details: string): void;
  close(): Promise<void>;
}

interface SynthesizeRequest {
  input?: { text?: string; ssml?: string };
  voice?: { languageCode?: string; name?: string };
  audioConfig?: { audioEncoding?: string; sampleRateHertz?: number };
}

const require = createRequire(import.meta.url);

/** Folders holding cloud_tts.proto and its google/api imports, inside the installed packages. */
export function protoDirs(): { tts: string; gax: string } {
  const ttsMain = require.resolve('@google-cloud/text-to-speech'); // …/text-to-speech/build/src/index.js
  const ttsRoot = join(dirname(ttsMain), '..', '..');
  const gaxMain = createRequire(ttsMain).resolve('google-gax'); // …/google-gax/build/src/index.js
  return { tts: join(ttsRoot, 'build', 'protos'), gax: join(dirname(gaxMain), '..', 'protos') };
}

function chunk(id: string, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.write(id, 0, 'ascii');
  header.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function riff(chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'ascii'), ...chunks]);
  const header = Buffer.alloc(8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(body.length, 4);
  return Buffer.concat([header, body]);
}

function fmtChunk(format: number, rate: number, bits: number, extended: boolean): Buffer {
  const fmt = Buffer.alloc(extended ? 18 : 16);
  fmt.writeUInt16LE(format, 0);
  fmt.writeUInt16LE(1, 2);
  fmt.writeUInt32LE(rate, 4);
  fmt.writeUInt32LE((rate * bits) / 8, 8);
  fmt.writeUInt16LE(bits / 8, 12);
  fmt.writeUInt16LE(bits, 14);
  return chunk('fmt ', fmt);
}

function tone(hz: number, rate: number, samples: number): Int16Array {
  const out = new Int16Array(samples);
  for (let n = 0; n < samples; n++) out[n] = Math.round(16384 * Math.sin((2 * Math.PI * hz * n) / rate));
  return out;
}

export async function startFakeGoogleTts(options: FakeGoogleTtsOptions = {}): Promise<FakeGoogleTts> {
  const dirs = protoDirs();
  const definition = await protoLoader.load('google/cloud/texttospeech/v1/cloud_tts.proto', {
    includeDirs: [dirs.tts, dirs.gax],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { cloud: { texttospeech: { v1: { TextToSpeech: grpc.ServiceClientConstructor } } } };
  };
  const service = loaded.google.cloud.texttospeech.v1.TextToSpeech.service;

  const requests: RecordedSynthesis[] = [];
  const failures: { code: grpc.status; details: string }[] = [];
  const toneHz = options.toneHz ?? 440;
  const msPerChar = options.msPerChar ?? 50;

  const server = new grpc.Server();
  server.addService(service, {
    SynthesizeSpeech(
      call: grpc.ServerUnaryCall<SynthesizeRequest, unknown>,
      callback: grpc.sendUnaryData<{ audioContent: Buffer }>,
    ) {
      const req = call.request;
      const encoding = req.audioConfig?.audioEncoding ?? 'AUDIO_ENCODING_UNSPECIFIED';
      const requestedRate = req.audioConfig?.sampleRateHertz || 24_000;
      requests.push({
        text: req.input?.text,
        voiceName: req.voice?.name ?? '',
        languageCode: req.voice?.languageCode ?? '',
        audioEncoding: encoding,
        sampleRateHertz: requestedRate,
        metadata: call.metadata.getMap(),
      });
      const failure = failures.shift();
      if (failure) {
        callback({ code: failure.code, details: failure.details });
        return;
      }
      const text = req.input?.text ?? '';
      if (text === '') {
        callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: 'Either `input.text` or `input.ssml` is required.',
        });
        return;
      }
      const rate = options.answerRate ?? requestedRate;
      const pcm = tone(toneHz, rate, Math.round((text.length * msPerChar * rate) / 1000));
      if (encoding === 'LINEAR16') {
        const data = Buffer.alloc(pcm.length * 2);
        for (let i = 0; i < pcm.length; i++) data.writeInt16LE(pcm[i]!, i * 2);
        const info = Buffer.concat([
          Buffer.from('INFO', 'ascii'),
          chunk('ISFT', Buffer.from('fake-google\0', 'ascii')),
        ]);
        const list = options.listChunk === false ? [] : [chunk('LIST', info)];
        callback(null, { audioContent: riff([fmtChunk(1, rate, 16, false), ...list, chunk('data', data)]) });
        return;
      }
      if (encoding === 'MULAW') {
        const fact = Buffer.alloc(4);
        fact.writeUInt32LE(pcm.length, 0);
        const data = encodeMulaw(pcm);
        callback(null, {
          audioContent: riff([fmtChunk(7, rate, 8, true), chunk('fact', fact), chunk('data', data)]),
        });
        return;
      }
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `this fake does not serve ${encoding}` });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );

  return {
    port,
    requests,
    failNext(code, details) {
      failures.push({ code, details });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}
