// Capture scenario: the Vercel AI SDK (ai 7) with telemetry on the Node OpenTelemetry SDK:
// @ai-sdk/otel registered through registerTelemetry (the AI SDK 7 form of
// experimental_telemetry), the real OTLP/protobuf exporter to the harness's sink. OpenAI chat,
// stream, embeddings, a two-step tool loop, a 500 then success, a call failing every attempt,
// a reasoning model, the Responses API, and Anthropic with cache reads and writes (one
// streamed). Same steps, same control protocol as the Python scenarios (kit.py).
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { OpenTelemetry } from '@ai-sdk/otel';
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { embedMany, generateText, isStepCount, registerTelemetry, streamText, tool } from 'ai';
import { z } from 'zod';

const env = process.env;
const FAKE = env.RC_FAKE_URL;
const LIBRARY = env.RC_LIBRARY;
const RUN_ID = `${LIBRARY}-r0-${randomBytes(4).toString('hex')}`;
const CONVERSATION_ID = `conv-${RUN_ID}`;
const KEYS = {
  'workflow.id': `wf-${RUN_ID}`,
  'workflow.type': 'support_triage',
  'tenant.id': 'tenant-acme',
  'feature.id': 'ticket-triage',
  'user.id': 'user-000',
};
const SYSTEM = 'You are a support agent. Answer from the knowledge base. '.repeat(20);
const QUESTION = 'How long does a refund take?';

const sdk = new NodeSDK({
  spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: env.RC_OTLP_ENDPOINT }) })],
  instrumentations: [],
});
sdk.start();
registerTelemetry(new OpenTelemetry());

const openai = createOpenAI({ baseURL: env.OPENAI_BASE_URL, apiKey: env.OPENAI_API_KEY });
const anthropic = createAnthropic({ baseURL: `${env.ANTHROPIC_BASE_URL}/v1`, apiKey: env.ANTHROPIC_API_KEY });
const telemetry = { isEnabled: true, functionId: 'support-triage' };
const steps = [];
const runs = [];

async function control(step, fail = [], always = null) {
  await fetch(`${FAKE}/_control/step`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ run: RUN_ID, library: LIBRARY, step, fail, always }),
  });
}

async function step(name, body, { fail = [], always = null, expectError = false } = {}) {
  await control(name, fail, always);
  const started = performance.now();
  const record = { step: name };
  try {
    await body();
    record.ok = !expectError;
    record.s = Math.round(performance.now() - started) / 1000;
  } catch (error) {
    record.ok = expectError;
    record.raised = `${error.name}: ${String(error.message).slice(0, 300)}`;
  } finally {
    await control('', []);
  }
  steps.push(record);
}

const searchKb = tool({
  description: 'Search the knowledge base.',
  inputSchema: z.object({ query: z.string() }),
  execute: async ({ query }) => `Result for ${query}: refunds take five business days.`,
});
// AI SDK 7 refuses system messages in `messages`: the cache breakpoint goes on the user turn.
const cached = [
  { role: 'user', content: QUESTION, providerOptions: { anthropic: { cacheControl: { type: 'ephemeral' } } } },
];

const tracer = trace.getTracer('rc.app', '1.0');
let ctx = context.active();
let bag = propagation.createBaggage(Object.fromEntries(Object.entries(KEYS).map(([k, v]) => [k, { value: v }])));
ctx = propagation.setBaggage(ctx, bag);

await context.with(ctx, () =>
  tracer.startActiveSpan(
    'agent run',
    {
      attributes: {
        ...KEYS,
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.agent.name': 'support-triage',
        'gen_ai.conversation.id': CONVERSATION_ID,
        'rc.run_id': RUN_ID,
      },
    },
    async (root) => {
      const sc = root.spanContext();
      runs.push({
        run_id: RUN_ID,
        trace_id: sc.traceId,
        root_span_id: sc.spanId,
        conversation_id: CONVERSATION_ID,
        ...KEYS,
      });
      const call = { instructions: SYSTEM, prompt: QUESTION, experimental_telemetry: telemetry };
      await step('ai generateText openai.chat gpt-4o-mini', () =>
        generateText({ model: openai.chat('gpt-4o-mini'), temperature: 0.2, maxOutputTokens: 200, ...call }),
      );
      await step('ai generateText openai.chat gpt-4o', () =>
        generateText({ model: openai.chat('gpt-4o'), maxOutputTokens: 300, ...call }),
      );
      await step('ai streamText openai.chat gpt-4o-mini', async () => {
        const result = streamText({ model: openai.chat('gpt-4o-mini'), ...call });
        for await (const _ of result.textStream) {
          // drain
        }
        await result.usage;
      });
      await step('ai embedMany openai text-embedding-3-small', () =>
        embedMany({
          model: openai.embedding('text-embedding-3-small'),
          values: ['refund policy', 'shipping times'],
          experimental_telemetry: telemetry,
        }),
      );
      await step('app tool span search_kb', async () => {
        const span = tracer.startSpan('execute_tool search_kb', {
          attributes: {
            'gen_ai.operation.name': 'execute_tool',
            'gen_ai.tool.name': 'search_kb',
            'gen_ai.tool.type': 'function',
            'gen_ai.tool.call.id': `call_${RUN_ID}`,
          },
        });
        await new Promise((resolve) => setTimeout(resolve, 5));
        span.end();
      });
      await step('ai generateText openai.chat gpt-4o-mini tool loop (two steps, search_kb)', () =>
        generateText({
          model: openai.chat('gpt-4o-mini'),
          tools: { search_kb: searchKb },
          stopWhen: isStepCount(3),
          ...call,
        }),
      );
      await step('ai generateText openai.chat gpt-4o-mini 500-then-retry', () =>
        generateText({ model: openai.chat('gpt-4o-mini'), ...call }), { fail: [500] });
      await step('ai generateText openai.chat gpt-4o 429-then-retry', () =>
        generateText({ model: openai.chat('gpt-4o'), maxOutputTokens: 300, ...call }), { fail: [429] });
      await step(
        'ai generateText openai.chat gpt-4o-mini 429 every attempt',
        () => generateText({ model: openai.chat('gpt-4o-mini'), ...call }),
        { always: 429, expectError: true },
      );
      await step('ai generateText openai.chat o4-mini (reasoning)', () =>
        generateText({ model: openai.chat('o4-mini'), ...call }),
      );
      await step('ai generateText openai.responses gpt-4o-mini', () =>
        generateText({ model: openai.responses('gpt-4o-mini'), ...call }),
      );
      await step('ai generateText anthropic claude-sonnet-4-5', () =>
        generateText({
          model: anthropic('claude-sonnet-4-5'),
          instructions: SYSTEM,
          messages: cached,
          maxOutputTokens: 256,
          experimental_telemetry: telemetry,
        }),
      );
      await step('ai streamText anthropic claude-sonnet-4-5', async () => {
        const result = streamText({
          model: anthropic('claude-sonnet-4-5'),
          instructions: SYSTEM,
          messages: cached,
          maxOutputTokens: 256,
          experimental_telemetry: telemetry,
        });
        for await (const _ of result.textStream) {
          // drain
        }
        await result.usage;
      });
      root.end();
    },
  ),
);

await sdk.shutdown();
writeFileSync(env.RC_RESULT, JSON.stringify({ runs, steps }));
