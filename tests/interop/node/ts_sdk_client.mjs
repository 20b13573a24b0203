// The official TypeScript SDK client against a server under test.
//   node ts_sdk_client.mjs --url URL [--transport http|sse] [--token T] [--tool echo --args '{"text":"hi"}']
//                          [--oauth --authorize-cmd "python -m tests.interop.oauth_forms"]
// Prints one JSON line: {ok, steps: [...], error}.
import { execFileSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Run, deadline, options, summarizeCall, summarizeTools } from './lib.mjs';

const opts = options({ oauth: { type: 'boolean', default: false }, 'authorize-cmd': { type: 'string' } });
const run = new Run();

// OAuth: the browser is replaced by a command that is handed the authorization URL, fills the
// login and consent forms and prints {"code": ..., "state": ...} (tests/interop/oauth_forms.py).
class ScriptedProvider {
  constructor(command) {
    this.command = command; this.state_ = null; this.verifier = null; this.info = null; this.tok = null;
    this.code = null;
  }
  get redirectUrl() { return 'http://127.0.0.1:53682/callback'; }
  get clientMetadata() {
    return { client_name: 'till-interop ts-sdk', redirect_uris: [this.redirectUrl],
             grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
             token_endpoint_auth_method: 'none' };
  }
  state() { this.state_ = crypto.randomUUID(); return this.state_; }
  clientInformation() { return this.info ?? undefined; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.tok ?? undefined; }
  saveTokens(tokens) { this.tok = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  redirectToAuthorization(url) {
    const [cmd, ...args] = this.command.split(' ').filter(Boolean);
    const out = execFileSync(cmd, [...args, url.toString()], { encoding: 'utf8', timeout: 60000 });
    const answer = JSON.parse(out.trim().split('\n').pop());
    if (answer.state !== this.state_) throw new Error('authorization answered with a different state');
    this.code = answer.code;
  }
}

function makeTransport(provider) {
  const url = new URL(opts.url);
  const requestInit = opts.token ? { headers: { Authorization: `Bearer ${opts.token}` } } : undefined;
  const common = { requestInit, authProvider: provider ?? undefined };
  return opts.transport === 'sse' ? new SSEClientTransport(url, common) : new StreamableHTTPClientTransport(url, common);
}

let client;
const timer = deadline(run, opts.timeoutMs, async () => client?.close());
try {
  const provider = opts.oauth ? new ScriptedProvider(opts['authorize-cmd']) : null;
  client = new Client({ name: 'till-interop-ts-sdk', version: '1.0.0' });
  await run.step('initialize', async () => {
    try {
      await client.connect(makeTransport(provider));
    } catch (err) {
      if (!(provider && err instanceof UnauthorizedError && provider.code)) throw err;
      // The SDK's OAuth dance: the first connect redirects, the code is exchanged, then reconnect.
      const transport = makeTransport(provider);
      await transport.finishAuth(provider.code);
      client = new Client({ name: 'till-interop-ts-sdk', version: '1.0.0' });
      await client.connect(makeTransport(provider));
    }
    return { protocolVersion: client.transport?.protocolVersion ?? null, server: client.getServerVersion() };
  });
  if (provider) {
    await run.step('oauth', async () => {
      if (!provider.tok?.access_token) throw new Error('connected without an OAuth access token');
      return { registered: Boolean(provider.info?.client_id), tokenType: provider.tok.token_type };
    });
  }
  await run.step('tools/list', async () => summarizeTools(await client.listTools()));
  await run.step('tools/call', async () => summarizeCall(await client.callTool({ name: opts.tool, arguments: opts.toolArgs })));
  await run.step('resources/list', async () => ({ count: (await client.listResources()).resources.length }));
  await run.step('prompts/list', async () => ({ count: (await client.listPrompts()).prompts.length }));
  await run.step('ping', async () => { await client.ping(); return {}; });
  run.finish(null);
} catch (err) {
  run.finish(err);
} finally {
  clearTimeout(timer);
  try { await client?.close(); } catch { /* result already printed */ }
}
process.exit(0);
