/**
 * AMI throughput on loopback: the parser alone (events per second from one big buffer and from
 * small TCP-sized chunks), then AmiClient against the simulator's AmiServer (Pings per second at a
 * few concurrency levels, and events per second delivered to a listener).
 *
 *   npx tsx bench/ami-throughput.ts
 */

import { AmiClient } from '../src/asterisk/ami-client.js';
import { AmiParser } from '../src/asterisk/ami-codec.js';
import { AmiServer } from '../src/sandbox/ami-server.js';

const EVENT =
  'Event: Newstate\r\nPrivilege: call,all\r\nTimestamp: 1700000000.000001\r\nChannel: PJSIP/bob-00000059\r\n' +
  'ChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: 7000\r\nCallerIDName: Bench\r\n' +
  'ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\n' +
  'Context: from-sip\r\nExten: s\r\nPriority: 1\r\nUniqueid: 1700000000.1\r\nLinkedid: 1700000000.1\r\n\r\n';

function parserBench(): void {
  const count = 100_000;
  const data = Buffer.from(EVENT.repeat(count));
  for (const chunkSize of [data.length, 1460, 64]) {
    const parser = new AmiParser();
    const started = process.hrtime.bigint();
    let parsed = 0;
    for (let i = 0; i < data.length; i += chunkSize)
      parsed += parser.push(data.subarray(i, i + chunkSize)).length;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const label = chunkSize === data.length ? 'one buffer' : `${chunkSize}-byte chunks`;
    console.log(
      `parser, ${label}: ${parsed} events in ${ms.toFixed(0)} ms = ${Math.round(parsed / (ms / 1000))} events/s`,
    );
  }
}

async function clientBench(): Promise<void> {
  const server = new AmiServer({ users: { bench: 'bench-secret' } });
  await server.listen(0);
  const client = new AmiClient({
    host: '127.0.0.1',
    port: server.port,
    username: 'bench',
    password: 'bench-secret',
  });
  await client.connect();

  for (const concurrency of [1, 10, 100]) {
    const total = 20_000;
    let sent = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (sent < total) {
        sent++;
        await client.action({ Action: 'Ping' });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const ms = performance.now() - started;
    console.log(
      `client Ping, concurrency ${concurrency}: ${total} in ${ms.toFixed(0)} ms = ${Math.round(total / (ms / 1000))}/s`,
    );
  }

  const events = 100_000;
  let received = 0;
  const done = new Promise<void>((resolve) => {
    client.on('Newstate', () => {
      received++;
      if (received === events) resolve();
    });
  });
  const fields: [string, string][] = EVENT.trim()
    .split('\r\n')
    .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]);
  const started = performance.now();
  for (let i = 0; i < events; i++) server.publishEvent(fields);
  await done;
  const ms = performance.now() - started;
  console.log(
    `events server→client: ${events} in ${ms.toFixed(0)} ms = ${Math.round(events / (ms / 1000))}/s`,
  );

  await client.close();
  await server.close();
}

parserBench();
await clientBench();
