/**
 * A realtime AI receptionist on extension 3000, by voice and by text, over OpenAI Realtime.
 *
 *   OPENAI_API_KEY=… npx tsx examples/openai-agent.ts   # against the Asterisk in ASTERISK_* (see example-configs/)
 *
 * Call 3000 (or send it a SIP MESSAGE): the agent greets you, can look up an order with a tool,
 * transfer you to sales or support (and nowhere else, whatever you tell it), and hang up when you
 * say goodbye. If the model cannot be reached, the caller hears an apology and is sent to the
 * operator instead of silence.
 */
import type { AgentTool, TextUI, VoiceAgentOptions, VoiceUI } from '../src/index.js';

export const AGENT_NUMBER = '3000';
/** Where people answer: a context of your dialplan with extensions sales, support and operator. */
export const OPERATORS = 'asteramisk-operator';

const ORDERS: Readonly<Record<string, string>> = {
  '1234': 'shipped on Monday, arriving Thursday',
  '5678': 'being packed',
};

/** A tool any agent of ours can use: works the same on a call and in a text conversation. */
export const lookUpOrder: AgentTool<VoiceUI | TextUI> = {
  name: 'look_up_order',
  description: 'Looks up the status of an order by its number.',
  parameters: {
    type: 'object',
    properties: { order_number: { type: 'string', description: 'The order number, digits only' } },
    required: ['order_number'],
    additionalProperties: false,
  },
  handler: async (args) => {
    const number = String(args.order_number ?? '').replace(/\D/g, '');
    return ORDERS[number] ? { order: number, status: ORDERS[number] } : { error: `No order ${number}` };
  },
};

const INSTRUCTIONS =
  'You are the receptionist of Example Shop. Be brief and friendly. You can look up orders by ' +
  'number, and transfer callers to sales or support. Say goodbye and end the call when the caller is done.';

/** Options of the agent; `connection` lets a test point it at a local model. */
export function agentOptions(overrides: Partial<VoiceAgentOptions> = {}): VoiceAgentOptions {
  return {
    instructions: INSTRUCTIONS,
    greeting: 'Thanks for calling Example Shop, how can I help?',
    tools: [lookUpOrder],
    transferTargets: {
      sales: { context: OPERATORS, extension: 'sales' },
      support: { context: OPERATORS, extension: 'support' },
    },
    endCall: { goodbye: 'Goodbye, and thanks for calling!' },
    ...overrides,
  };
}

/** The voice handler: the agent, then a fallback when the model failed. */
export async function voiceAgent(ui: VoiceUI, overrides: Partial<VoiceAgentOptions> = {}): Promise<void> {
  ui.on('agent', (event) => {
    if (event.type === 'transcript' && event.final) console.log(`${event.role}: ${event.text}`);
    if (event.type === 'toolCall')
      console.log(`tool ${event.name}(${JSON.stringify(event.args)}) → ${JSON.stringify(event.result)}`);
  });
  const result = await ui.connectOpenAIAgent(agentOptions(overrides));
  if (result.reason === 'model-error' && ui.active) {
    await ui.play('sound:an-error-has-occurred');
    await ui.transfer({ context: OPERATORS, extension: 'operator' });
  }
}

/** The text handler: the same agent over SIP MESSAGE. */
export async function textAgent(ui: TextUI, overrides: Partial<VoiceAgentOptions> = {}): Promise<void> {
  const { transferTargets: _calls, ...options } = agentOptions(overrides);
  await ui.connectOpenAIAgent({
    ...options,
    instructions: `${INSTRUCTIONS} This is a text chat: no transfers; keep answers to one or two sentences.`,
    tools: [lookUpOrder],
    greeting: false,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { Server } = await import('../src/index.js');
  const server = await Server.create();
  await server.registerExtension(AGENT_NUMBER, {
    voice: (ui) => voiceAgent(ui),
    text: (ui) => textAgent(ui),
  });
  console.log(`OpenAI agent on ${AGENT_NUMBER} (voice and text). Ctrl-C to stop.`);
  await server.serveForever();
}
