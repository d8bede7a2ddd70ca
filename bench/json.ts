/**
 * The JSON decoder (src/core/json.ts) beside the runtime's raw `JSON.parse` on the same text,
 * in alternating slices: what the exactness check and Matrix's input rules cost on realistic
 * texts. The aim is ≤ 10 % over raw (ratio ≥ 0.909) on texts the fast path takes; a text with an
 * escaped object key takes the exact parser, which is shown for what it costs. A text with no
 * backslash costs one search; each string that holds one costs a search for its closing quote
 * and one more for each escaped quote in it (up to a few), so short bodies with a line break
 * and HTML bodies (an escaped quote at each attribute) cost the most: they have rows here.
 */
import { JsonRules, parseJson } from '../src/core/json.ts';
import { sampleEvent } from './core.ts';
import { type BenchRow, rates2SyncCpu } from './harness.ts';

/** A client's message body with line breaks and quotes: backslashes in values, none in keys. */
function messageBody(i: number): Record<string, unknown> {
  return {
    msgtype: 'm.text',
    body: `Line one of message ${i}\nline "two" with a tab\tand a path C:\\temp\n${'words and more words '.repeat(20)}`,
    format: 'org.matrix.custom.html',
    formatted_body: `<p>Line one of message ${i}</p><p>line <b>two</b></p>`,
    'm.mentions': { user_ids: ['@bob:bench.example.org'] },
  };
}

/**
 * Pasted code in a message: 40 lines, each with a quoted string, so ~120 escapes (`\n`, `\"`)
 * in one value — a scan that stops at every escaped quote would cost more than the parse.
 */
function codeBody(): Record<string, unknown> {
  const lines = Array.from({ length: 40 }, (_, i) => `    const x${i} = "value ${i}"; // line ${i}`);
  return {
    msgtype: 'm.text',
    body: `\`\`\`\n${lines.join('\n')}\n\`\`\``,
    format: 'org.matrix.custom.html',
    formatted_body: `<pre><code>${lines.join('\n').replaceAll('"', '&quot;')}</code></pre>`,
  };
}

/** A one-line reply with a line break: the shortest kind of body that holds an escape. */
function shortBody(): Record<string, unknown> {
  return { msgtype: 'm.text', body: 'Hello Bob,\nsee you at five.' };
}

/**
 * A reply as Element sends it: HTML whose links and mentions put an escaped quote at each
 * attribute, and colons in every URL and user ID (both are what the scan must step over).
 */
function htmlReplyBody(): Record<string, unknown> {
  const link = (id: string) => `<a href="https://matrix.to/#/${id}">${id}</a>`;
  const users = ['@bob:example.org', '@carol:example.org', '@dave:example.org'];
  return {
    msgtype: 'm.text',
    body: `> <@bob:example.org> are you coming?\n\nyes, "soon" — ${users.join(' ')}`,
    format: 'org.matrix.custom.html',
    formatted_body: `<mx-reply><blockquote>${link('!room:example.org/$event')} ${link(users[0] as string)}<br>are you coming?</blockquote></mx-reply>yes, "soon" — ${users.map(link).join(' ')}`,
    'm.mentions': { user_ids: users },
    'm.relates_to': { 'm.in_reply_to': { event_id: '$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' } },
  };
}

/** A /sync answer of `rooms` rooms × `events` events each. */
function syncDocument(rooms: number, events: number): Record<string, unknown> {
  const join: Record<string, unknown> = {};
  for (let r = 0; r < rooms; r++) {
    const roomId = `!room${r}:bench.example.org`;
    join[roomId] = {
      timeline: {
        events: Array.from({ length: events }, (_, i) => ({
          ...sampleEvent(i),
          event_id: `$event-${r}-${i}-abcdefghijklmnopqrstuvwxyz0123456`,
          content: i % 3 === 0 ? messageBody(i) : sampleEvent(i).content,
        })),
        limited: true,
        prev_batch: `t${r}-1234`,
      },
      state: { events: [] },
      unread_notifications: { notification_count: r, highlight_count: 0 },
    };
  }
  return { next_batch: 's1234_5678', rooms: { join, invite: {}, leave: {} }, account_data: { events: [] } };
}

/**
 * A request body as the router read it before this decoder (src/api/http.ts before 4f166c6):
 * `JSON.parse`, then one iterative walk refusing nesting deeper than `maxDepth` and numbers
 * made ±Infinity. Beside it, the decoder's request rows show what exactness and the
 * lone-surrogate rule add to a request, apart from the depth and ±Infinity checks a request
 * body always had.
 */
function parseBeforeDecoder(text: string, maxDepth: number): unknown {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) return value;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [object, number];
    if (depth > maxDepth) throw new Error('too deep');
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
      else if (typeof child === 'number' && !Number.isFinite(child)) throw new Error('non-finite');
    }
  }
  return value;
}

export function jsonBench(): BenchRow[] {
  const cases: Array<{ name: string; text: string; options: Parameters<typeof parseJson>[1] }> = [
    // A request body, read as src/api/http.ts reads it: decoded from UTF-8, Matrix's input rules.
    {
      name: 'a client event body (1 KB)',
      text: JSON.stringify(sampleEvent(1).content),
      options: { maxDepth: 256, fromUtf8: true },
    },
    {
      name: 'a message body with \\n and \\" in values',
      text: JSON.stringify(messageBody(1)),
      options: { maxDepth: 256, fromUtf8: true },
    },
    {
      name: 'a message body with 40 lines of pasted code',
      text: JSON.stringify(codeBody()),
      options: { maxDepth: 256, fromUtf8: true },
    },
    // The same bodies with only the exactness check (what a stored row gets): the rows
    // above add Matrix's input rules — depth, ±Infinity, lone surrogates — which the request
    // path walked for before this decoder too.
    {
      name: 'a client event body, exactness only',
      text: JSON.stringify(sampleEvent(1).content),
      options: { trusted: true },
    },
    {
      name: 'a message body with escapes, exactness only',
      text: JSON.stringify(messageBody(1)),
      options: { trusted: true },
    },
    {
      name: 'a short message, no escape, exactness only',
      text: JSON.stringify({ msgtype: 'm.text', body: 'Hello Bob, see you at five.' }),
      options: { trusted: true },
    },
    {
      name: 'a short message with a line break, exactness only',
      text: JSON.stringify(shortBody()),
      options: { trusted: true },
    },
    {
      name: 'an HTML reply with links and mentions, exactness only',
      text: JSON.stringify(htmlReplyBody()),
      options: { trusted: true },
    },
    {
      name: 'pasted code, exactness only',
      text: JSON.stringify(codeBody()),
      options: { trusted: true },
    },
    {
      name: 'a stored event row (SQLite)',
      text: JSON.stringify({ ...sampleEvent(2), event_id: '$abc' }),
      options: { trusted: true },
    },
    {
      name: `a /sync answer, 20 rooms × 20 events`,
      text: JSON.stringify(syncDocument(20, 20)),
      options: { loneSurrogates: 'allow', maxDepth: 1024 },
    },
    {
      name: `a /sync answer, exactness only`,
      text: JSON.stringify(syncDocument(20, 20)),
      options: { trusted: true },
    },
    {
      name: 'slow path: an event body with one escaped key',
      text: JSON.stringify({ ...messageBody(3), 'org.example\n': 1 }),
      options: { maxDepth: 256 },
    },
  ];
  const rows = cases.map(({ name, text, options }): BenchRow => {
    // Made once, as the call sites that decode often (the router, the SQLite store) make theirs.
    const rules = new JsonRules(options);
    const [ours, raw] = rates2SyncCpu(
      () => parseJson(text, rules),
      () => JSON.parse(text),
      // Many short alternating slices, in CPU time: on a shared machine the ratio holds where rates drift.
      4000,
      40,
    );
    return {
      name: `parseJson, ${name} (${text.length} chars)`,
      value: ours,
      unit: 'texts/CPU-s',
      baselineName: 'JSON.parse, same text',
      baselineValue: raw,
      ratio: ours / raw,
    };
  });
  // The three request bodies again, beside the request path before the decoder.
  for (const { name, text, options } of cases.slice(0, 3)) {
    const rules = new JsonRules(options);
    const maxDepth = rules.maxDepth;
    const [ours, before] = rates2SyncCpu(
      () => parseJson(text, rules),
      () => parseBeforeDecoder(text, maxDepth),
      4000,
      40,
    );
    rows.push({
      name: `parseJson, ${name}, beside the request path before the decoder`,
      value: ours,
      unit: 'texts/CPU-s',
      baselineName: 'JSON.parse + its depth/±Infinity walk',
      baselineValue: before,
      ratio: ours / before,
    });
  }
  return rows;
}
