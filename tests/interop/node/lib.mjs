// Shared by the client scripts: argv/env parsing, step recording, the one-line JSON result.
import { parseArgs } from 'node:util';

export function options(extra = {}) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      transport: { type: 'string', default: 'http' },
      tool: { type: 'string', default: 'echo' },
      args: { type: 'string', default: '{}' },
      timeout: { type: 'string', default: '60' },
      ...extra,
    },
    allowPositionals: true,
  });
  values.url = values.url ?? process.env.TILL_INTEROP_URL;
  values.token = values.token ?? process.env.TILL_INTEROP_TOKEN;
  if (!values.url) throw new Error('--url (or TILL_INTEROP_URL) is required');
  values.toolArgs = JSON.parse(values.args);
  values.timeoutMs = Number(values.timeout) * 1000;
  return values;
}

// Records each step as {name, ok, ms, detail|error} and prints exactly one JSON line at the end.
export class Run {
  constructor() { this.steps = []; this.done = false; }

  async step(name, fn) {
    const t0 = Date.now();
    try {
      const detail = await fn();
      this.steps.push({ name, ok: true, ms: Date.now() - t0, detail });
      return detail;
    } catch (err) {
      this.steps.push({ name, ok: false, ms: Date.now() - t0, error: describe(err) });
      throw err;
    }
  }

  finish(error) {
    if (this.done) return;
    this.done = true;
    const ok = !error && this.steps.length > 0 && this.steps.every((s) => s.ok);
    process.stdout.write(JSON.stringify({ ok, steps: this.steps, error: error ? describe(error) : null }) + '\n');
  }
}

export function describe(err) {
  if (err instanceof Error) {
    const code = err.code !== undefined ? ` (code ${err.code})` : '';
    return `${err.name}: ${err.message}${code}`;
  }
  return String(err);
}

// A hard deadline: whatever happens, one result line is printed and the process exits.
export function deadline(run, ms, cleanup = async () => {}) {
  const timer = setTimeout(async () => {
    run.finish(new Error(`timed out after ${ms} ms`));
    try { await cleanup(); } catch { /* already failing */ }
    process.exit(2);
  }, ms);
  timer.unref();
  return timer;
}

export function summarizeTools(result) {
  return { count: result.tools.length, names: result.tools.map((t) => t.name).slice(0, 50) };
}

export function summarizeCall(result) {
  const text = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  if (result.isError) throw new Error(`tool returned isError: ${text.slice(0, 500)}`);
  return { text: text.slice(0, 500), structured: result.structuredContent ?? null };
}
