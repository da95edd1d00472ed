// Tests `dejavu serve` with the official OpenAI Node client. The server's URL
// (e.g. http://127.0.0.1:8080/v1) comes from DEJAVU_BASE_URL and the model id
// from DEJAVU_MODEL; server/node_test.go starts a server and runs this file
// with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.DEJAVU_BASE_URL;
const model = process.env.DEJAVU_MODEL ?? 'testbed-opt-relu';
if (!baseURL) throw new Error('set DEJAVU_BASE_URL to the server, e.g. http://127.0.0.1:8080/v1');

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

test('models.list names the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

test('completions, non-streaming and streaming give the same text', async () => {
  const params = { model, prompt: 'Once upon a time', max_tokens: 8, temperature: 0.8, seed: 7 };
  const res = await client.completions.create(params);
  assert.equal(res.object, 'text_completion');
  assert.equal(res.choices.length, 1);
  assert.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
  assert.ok(res.usage.prompt_tokens > 0);
  assert.ok(res.usage.completion_tokens > 0 && res.usage.completion_tokens <= 8);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);

  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, res.choices[0].text);
  assert.equal(finish, res.choices[0].finish_reason);
  assert.deepEqual(usage, res.usage);
});

test('chat completions, non-streaming and streaming give the same text', async () => {
  const params = {
    model,
    messages: [
      { role: 'system', content: 'You are a storyteller.' },
      { role: 'user', content: 'Tell me about a dragon.' },
    ],
    max_tokens: 8,
    temperature: 0.7,
    seed: 11,
  };
  const res = await client.chat.completions.create(params);
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.choices[0].message.role, 'assistant');
  assert.equal(typeof res.choices[0].message.content, 'string');
  assert.ok(res.usage.completion_tokens > 0);

  const stream = await client.chat.completions.create({ ...params, stream: true });
  let text = '';
  let role = null;
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    const c = chunk.choices[0];
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, res.choices[0].message.content);
  assert.equal(finish, res.choices[0].finish_reason);
});

test('a stop string ends the text and is not part of it', async () => {
  const base = { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
  const full = (await client.completions.create(base)).choices[0].text;
  const at = Math.max(1, Math.floor(full.length / 2));
  const stop = full.slice(at, at + 2);
  const cut = full.slice(0, full.indexOf(stop));
  const res = await client.completions.create({ ...base, stop: [stop] });
  assert.equal(res.choices[0].text, cut);
  assert.equal(res.choices[0].finish_reason, 'stop');
});

test('errors arrive as APIError with the OpenAI error object', async () => {
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'hi', max_tokens: 2 }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.param, 'model');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    },
  );
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], n: 2 }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === 'n',
  );
  await assert.rejects(
    client.completions.create({ model, prompt: 'hi', max_tokens: 0 }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'max_tokens',
  );
});
