// mcp-remote as Claude Desktop runs it (`npx mcp-remote URL --header "Authorization: Bearer T"
// --transport http-only|sse-only`), driven over stdio by a minimal newline-delimited JSON-RPC client.
//   node mcp_remote_client.mjs --url URL [--transport http|sse] [--token T] [--protocol 2025-06-18]
//                              [--tool echo --args '{"text":"hi"}'] [--timeout 60]
// Prints one JSON line: {ok, steps: [...], error}.  Without --token mcp-remote runs its OAuth flow and
// opens the "browser" named by $BROWSER (the harness points it at the form-filling handler).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { Run, deadline, options, summarizeCall, summarizeTools } from './lib.mjs';

const opts = options({ protocol: { type: 'string', default: '2025-06-18' } });
const run = new Run();
const require = createRequire(import.meta.url);
const proxy = path.join(path.dirname(require.resolve('mcp-remote/package.json')), 'dist', 'proxy.js');

const argv = [proxy, opts.url, '--transport', opts.transport === 'sse' ? 'sse-only' : 'http-only'];
if (opts.token) argv.push('--header', `Authorization: Bearer ${opts.token}`);
const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
let stderr = '';
child.stderr.on('data', (d) => { stderr = (stderr + d.toString()).slice(-4000); });

const pending = new Map();
let exited = null;
child.on('exit', (code, signal) => {
  exited = `mcp-remote exited (code ${code}, signal ${signal})`;
  for (const { reject } of pending.values()) reject(new Error(`${exited}; stderr tail: ${stderr.slice(-800)}`));
  pending.clear();
});
readline.createInterface({ input: child.stdout }).on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch { return; }            // not ours: mcp-remote logs go to stderr
  if (msg.id !== undefined && pending.has(msg.id) && !msg.method) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
    else resolve(msg.result);
  }
});

let nextId = 1;
function request(method, params) {
  if (exited) return Promise.reject(new Error(exited));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
  });
}
function notify(method, params) {
  child.stdin.write(JSON.stringify({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }) + '\n');
}

const stop = async () => { if (!exited) child.kill('SIGTERM'); };
const timer = deadline(run, opts.timeoutMs, stop);
try {
  await run.step('initialize', async () => {
    const r = await request('initialize', {
      protocolVersion: opts.protocol, capabilities: {},
      clientInfo: { name: 'till-interop-mcp-remote-driver', version: '1.0.0' },
    });
    notify('notifications/initialized');
    return { protocolVersion: r.protocolVersion, server: r.serverInfo };
  });
  await run.step('tools/list', async () => summarizeTools(await request('tools/list', {})));
  await run.step('tools/call', async () => summarizeCall(await request('tools/call', { name: opts.tool, arguments: opts.toolArgs })));
  await run.step('ping', async () => { await request('ping'); return {}; });
  run.finish(null);
} catch (err) {
  if (stderr && err instanceof Error && !err.message.includes('stderr tail')) err.message += `; stderr tail: ${stderr.slice(-800)}`;
  run.finish(err);
} finally {
  clearTimeout(timer);
  child.stdin.end();
  await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 3000))]);
  await stop();
}
process.exit(0);
