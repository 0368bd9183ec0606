/**
 * `npm run demo`: the same as `npx asteramisk demo` (src/cli/demo.ts): examples/hello.ts answering a
 * simulated phone call, with no PBX and no cloud account, over real sockets on 127.0.0.1.
 */
import { runDemo } from '../src/cli/demo.js';

await runDemo();
