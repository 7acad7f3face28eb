import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'chai';
import { io as ioClient } from 'socket.io-client';
import { COMMANDS, optionsOf } from '../../server/cli/commands.js';
import { adminKey } from '../api/helpers.js';
import { emitAck, nextEvent, startServer, TEST_KID, TEST_SECRET, type TestClient, type TestServer } from '../helpers/server.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `switchboard` as a child process: through tsx from the sources, or a compiled cli.js. */
function cli(args: string[], env: Record<string, string> = {}, entry?: string): Promise<Run> {
  const argv = entry ? [entry, ...args] : ['--import', 'tsx', 'server/cli/cli.ts', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`switchboard ${args.join(' ')} did not exit:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A local port nothing listens on (fetch refuses "bad ports" such as 1). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const SIGNING_KEYS = `${TEST_KID}:${TEST_SECRET}`;

/** Connects with the token and joins; resolves with the client and ack. */
async function joinWith(url: string, token: string): Promise<{ client: TestClient; ack: Record<string, unknown> }> {
  const client: TestClient = ioClient(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('connect_error', (error) => reject(error));
  });
  const ack = await emitAck(client, 'join', {});
  expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  return { client, ack: ack as unknown as Record<string, unknown> };
}

describe('cli: switchboard', function () {
  this.timeout(120_000);

  describe('help and usage (no server)', () => {
    it('--help works on the whole CLI, every group and every command, naming every flag', async () => {
      const top = await cli(['--help']);
      expect(top.code).to.equal(0);
      for (const command of COMMANDS) expect(top.stdout).to.include(command.path.join(' '));
      expect(top.stdout).to.include('Exit codes: 0 ok, 1').and.include('SWITCHBOARD_URL');
      expect((await cli(['help'])).stdout).to.equal(top.stdout);

      for (const group of ['token', 'tenant', 'rooms', 'participants']) {
        const help = await cli([group, '--help']);
        expect(help.code, group).to.equal(0);
        expect(help.stdout).to.include(`Usage: switchboard ${group} <command>`);
        for (const command of COMMANDS.filter((c) => c.path[0] === group)) expect(help.stdout).to.include(command.path.join(' '));
      }
      for (const command of COMMANDS) {
        const name = command.path.join(' ');
        const help = await cli([...command.path, '--help']);
        expect(help.code, name).to.equal(0);
        expect(help.stderr, name).to.equal('');
        expect(help.stdout, name).to.include(`Usage: switchboard ${name}`);
        for (const flag of Object.keys(optionsOf(command))) expect(help.stdout, `${name} --${flag}`).to.include(`--${flag}`);
        for (const positional of command.positionals) expect(help.stdout).to.include(`<${positional.name}>`);
        // -h as well, and --help wins over missing arguments.
        expect((await cli([...command.path, '-h'])).stdout, name).to.equal(help.stdout);
      }
    });

    it('no command, an unknown command or group word: exit 2 and the way to help', async () => {
      const none = await cli([]);
      expect(none.code).to.equal(2);
      expect(none.stderr).to.include('Usage: switchboard <command>');
      const unknown = await cli(['roms', 'list']);
      expect([unknown.code, unknown.stderr]).to.deep.equal([2, 'switchboard: unknown command "roms"\n(see switchboard --help)\n']);
      const sub = await cli(['rooms', 'lst']);
      expect([sub.code, sub.stderr]).to.deep.equal([2, 'switchboard: unknown command "rooms lst"\n(see switchboard rooms --help)\n']);
      const bare = await cli(['rooms']);
      expect(bare.code).to.equal(2);
      expect(bare.stderr).to.include('rooms list').and.include('rooms close');
    });

    it('refuses unknown flags, missing or extra arguments and invalid values with exit 2 and one clear line', async () => {
      const env = { SIGNING_KEYS, SWITCHBOARD_API_SECRET: 'sk_x', SWITCHBOARD_URL: 'http://127.0.0.1:1' };
      const cases: [string[], string][] = [
        [['rooms', 'list', '--bogus'], 'rooms list: unknown flag --bogus'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--grant', '{}'], 'token create: unknown flag --grant'],
        [['participants', 'kick', 'r'], 'participants kick: expects <room_id> <user_id>, got 1 argument(s)'],
        [['rooms', 'get'], 'rooms get: expects <room_id>, got 0 argument(s)'],
        [['rooms', 'list', 'extra'], 'rooms list: takes no arguments, got "extra"'],
        [['rooms', 'get', 'bad room'], 'rooms get: <room_id>: letters, digits and _ . : @ - only, not starting with a symbol'],
        [['participants', 'kick', 'r', '$where'], 'participants kick: <user_id>: letters, digits and _ . : @ - only'],
        [['rooms', 'list', '--limit', '0'], 'rooms list: --limit: Too small'],
        [['rooms', 'list', '--limit', 'ten'], 'rooms list: --limit: must be an integer'],
        [['rooms', 'list', '--cursor', 'a b'], 'rooms list: --cursor: must be a cursor returned by a previous page'],
        [['rooms', 'list', '--url'], "rooms list: Option '--url <value>' argument missing"],
        [['rooms', 'list', '--url', 'ftp://x'], 'rooms list: --url must be an http(s) URL'],
        [['token', 'create', '--room', 'r'], 'token create: --tenant is required (or SWITCHBOARD_TENANT)'],
        [['token', 'create', '--tenant', 'a b', '--room', 'r'], 'token create: --tenant must be a tenant id'],
        [['token', 'create', '--tenant', 't1'], 'token create: --room is required'],
        [
          ['token', 'create', '--tenant', 't1', '--room', 'r', '--grants', '{"canPublsh":false}'],
          'token create: --grants: Unrecognized key',
        ],
        [
          ['token', 'create', '--tenant', 't1', '--room', 'r', '--grants', '{"canPublish":"no"}'],
          'token create: --grants (canPublish): Invalid input: expected boolean',
        ],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--grants', 'canPublish=false'], 'token create: --grants must be JSON'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--ttl', '-5'], "token create: Option '--ttl' argument is ambiguous."],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--ttl=-5'], 'token create: --ttl must be a whole number, not "-5"'],
        [['rooms', 'list', '--admin-key', 'k'], 'rooms list: unknown flag --admin-key'],
        [['tenant', 'create', '--name', 'a', '--api-secret', 'k'], 'tenant create: unknown flag --api-secret'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--ttl', '1h'], 'token create: --ttl must be a whole number'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--ttl', '0'], 'token create: --ttl: Too small'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--role', 'king'], 'token create: --role: unknown role "king"; known: host'],
        [['token', 'create', '--tenant', 't1', '--room', 'r', '--metadata', '{"$gt":1}'], 'token create: --metadata'],
        [['tenant', 'create'], 'tenant create: --name is required'],
        [['tenant', 'create', '--name', 'a', '--limits', '{"max_rooms":0}'], 'tenant create: --limits (max_rooms): Too small'],
        [['tenant', 'create', '--name', 'a', '--webhook-secret', 'x'.repeat(20)], 'tenant create: --webhook-secret needs --webhook-url'],
        [['migrate', '--timeout', '0'], 'migrate: --timeout must be 1-300 seconds'],
      ];
      for (const [args, message] of cases) {
        const run = await cli(args, env);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
        expect(run.stderr, args.join(' ')).to.include(`switchboard: ${message}`);
        expect(run.stderr, args.join(' ')).to.match(/\(see switchboard [a-z ]+ --help\)\n$/);
        expect(run.stdout, args.join(' ')).to.equal('');
      }
    });

    it('needs the credential or setting a command uses, and names where it comes from (exit 2)', async () => {
      const noSecret = await cli(['rooms', 'list']);
      expect([noSecret.code, noSecret.stderr]).to.deep.equal([
        2,
        "switchboard: rooms list: needs the tenant's API secret: --api-secret or SWITCHBOARD_API_SECRET\n(see switchboard rooms list --help)\n",
      ]);
      const noAdmin = await cli(['tenant', 'create', '--name', 'acme']);
      expect(noAdmin.code).to.equal(2);
      expect(noAdmin.stderr).to.include('needs the admin key: --admin-key, SWITCHBOARD_ADMIN_KEY or ADMIN_API_KEY');
      // token create does not sign with a throw-away key (what `npm run token` refused before).
      const noKeys = await cli(['token', 'create', '--tenant', 't1', '--room', 'r']);
      expect(noKeys.code).to.equal(2);
      expect(noKeys.stderr).to.include('SIGNING_KEYS: required to sign tokens');
      const badKeys = await cli(['token', 'create', '--tenant', 't1', '--room', 'r'], { SIGNING_KEYS: 'k1:short' });
      expect(badKeys.code).to.equal(2);
      expect(badKeys.stderr).to.include('SIGNING_KEYS: the secret of kid "k1" must be at least 32 bytes');
      const noMongo = await cli(['migrate']);
      expect(noMongo.code).to.equal(2);
      expect(noMongo.stderr).to.include('MONGODB_URI: required to migrate the MongoDB store');
    });

    it('an unreachable server or MongoDB is exit 3', async () => {
      const port = await closedPort();
      const down = await cli(['rooms', 'list', '--url', `http://127.0.0.1:${port}`, '--api-secret', 'sk_x']);
      expect(down.code).to.equal(3);
      expect(down.stderr).to.equal(`switchboard: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`);
      const mongo = await cli(['migrate', '--dry-run', '--timeout', '1'], { MONGODB_URI: 'mongodb://127.0.0.1:1/switchboard' });
      expect(mongo.code, mongo.stderr).to.equal(3);
      expect(mongo.stderr).to.include(
        'switchboard: migrate: [MongoStore:init] cannot connect to mongodb://127.0.0.1:1: connect ECONNREFUSED',
      );
    });
  });

  describe('against a live server', () => {
    let t: TestServer;
    const clients: TestClient[] = [];
    beforeEach(async () => {
      t = await startServer();
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      await t.close();
    });

    it('tenant create, token create (local, for that tenant), rooms list/get, participants list/kick, rooms close', async () => {
      // tenant create with the admin key from the environment.
      const created = await cli(['tenant', 'create', '--name', 'Acme', '--limits', '{"max_participants":7}'], {
        SWITCHBOARD_URL: t.url,
        ADMIN_API_KEY: adminKey(t),
      });
      expect(created.code, created.stderr).to.equal(0);
      const tenant = JSON.parse(created.stdout) as { tenant_id: string; api_secret: string; name: string; limits: Record<string, unknown> };
      expect(tenant.name).to.equal('Acme');
      expect(tenant.limits.max_participants).to.equal(7);
      expect(tenant.api_secret).to.match(/^sk_/);
      expect(await t.server.store.tenants.get(tenant.tenant_id)).to.not.equal(null);

      // token create: signed locally, in production mode, without TURN_SECRET or any server setting.
      const local = { SIGNING_KEYS, NODE_ENV: 'production', SWITCHBOARD_TENANT: tenant.tenant_id };
      const minted = await cli(
        ['token', 'create', '--room', 'standup', '--user', 'alice', '--name', 'Alice', '--role', 'host', '--json'],
        local,
      );
      expect(minted.code, minted.stderr).to.equal(0);
      const token = JSON.parse(minted.stdout) as { token: string; jti: string; tenant_id: string; grants: Record<string, boolean> };
      expect(token).to.deep.include({ tenant_id: tenant.tenant_id, room_id: 'standup', user_id: 'alice', user_name: 'Alice' });
      expect(token.grants).to.deep.equal(t.server.config.roles.host);
      expect(t.server.tokens.verify(token.token)).to.deep.include({
        tenantId: tenant.tenant_id,
        roomId: 'standup',
        userId: 'alice',
        jti: token.jti,
      });
      const alice = await joinWith(t.url, token.token);
      clients.push(alice.client);
      expect(alice.ack.self).to.deep.include({ user_id: 'alice', name: 'Alice' });

      // Plain output is the token alone; --grants over no role leaves unnamed grants false.
      const bobToken = await cli(
        [
          'token',
          'create',
          '--tenant',
          tenant.tenant_id,
          '--room',
          'standup',
          '--user',
          'bob',
          '--grants',
          '{"roomJoin":true,"canSubscribe":true}',
        ],
        { SIGNING_KEYS },
      );
      expect(bobToken.code, bobToken.stderr).to.equal(0);
      expect(bobToken.stdout).to.match(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
      expect(t.server.tokens.verify(bobToken.stdout.trim()).grants).to.deep.include({
        canSubscribe: true,
        canPublish: false,
        roomAdmin: false,
      });
      const bob = await joinWith(t.url, bobToken.stdout.trim());
      clients.push(bob.client);

      const api = { SWITCHBOARD_URL: t.url, SWITCHBOARD_API_SECRET: tenant.api_secret };
      const live = await cli(['rooms', 'list', '--live'], api);
      expect(live.code, live.stderr).to.equal(0);
      const listed = JSON.parse(live.stdout) as { rooms: { room_id: string; num_participants: number }[]; next_cursor: string | null };
      expect(listed.rooms.map((r) => [r.room_id, r.num_participants])).to.deep.equal([['standup', 2]]);
      const stored = await cli(['rooms', 'list', '--limit', '5'], api);
      expect(JSON.parse(stored.stdout)).to.deep.equal({ rooms: [], next_cursor: null });

      // Flags override the environment.
      const got = await cli(['rooms', 'get', 'standup', '--url', t.url, '--api-secret', tenant.api_secret]);
      expect(got.code, got.stderr).to.equal(0);
      const room = JSON.parse(got.stdout) as { room_id: string; live: boolean; participants: { user_id: string }[] };
      expect(room).to.deep.include({ room_id: 'standup', live: true });
      expect(room.participants.map((p) => p.user_id).sort()).to.deep.equal(['alice', 'bob']);

      const people = await cli(['participants', 'list', 'standup', '--include-hidden'], api);
      expect(people.code, people.stderr).to.equal(0);
      expect(
        (JSON.parse(people.stdout) as { participants: { user_id: string }[] }).participants.map((p) => p.user_id).sort(),
      ).to.deep.equal(['alice', 'bob']);

      const kicked = nextEvent(bob.client, 'kicked');
      const kick = await cli(['participants', 'kick', 'standup', 'bob'], api);
      expect([kick.code, kick.stdout]).to.deep.equal([0, 'user bob kicked from room standup\n']);
      await kicked;

      const closed = nextEvent<{ reason: string }>(alice.client, 'room_closed');
      const close = await cli(['rooms', 'close', 'standup'], api);
      expect([close.code, close.stdout, close.stderr]).to.deep.equal([0, 'room standup closed\n', '']);
      expect((await closed).reason).to.equal('deleted');

      // Server errors: exit 1 with the stable code.
      const gone = await cli(['rooms', 'get', 'standup'], api);
      expect(gone.code).to.equal(1);
      expect(gone.stderr).to.match(/^switchboard: not_found: .+ \(HTTP 404\)\n$/);
      const wrongSecret = await cli(['rooms', 'list'], { ...api, SWITCHBOARD_API_SECRET: 'sk_wrong' });
      expect(wrongSecret.code).to.equal(1);
      expect(wrongSecret.stderr).to.equal('switchboard: unauthorized: API secret is not valid (HTTP 401)\n');
      const wrongAdmin = await cli(['tenant', 'create', '--name', 'x', '--url', t.url, '--admin-key', 'nope']);
      expect([wrongAdmin.code, wrongAdmin.stderr.split(':')[1]?.trim()]).to.deep.equal([1, 'unauthorized']);
      // A prefix the server does not serve: its JSON not_found, exit 1.
      const prefix = await cli(['rooms', 'list', '--url', `${t.url}/nowhere/`], api);
      expect([prefix.code, prefix.stderr]).to.deep.equal([1, 'switchboard: not_found: no such route (HTTP 404)\n']);
      // Something that is not the API at all (an HTML page): exit 3, not a crash.
      const html = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
      await new Promise<void>((resolve) => html.listen(0, '127.0.0.1', resolve));
      const htmlUrl = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
      const notApi = await cli(['rooms', 'list', '--url', htmlUrl], api);
      html.close();
      expect([notApi.code, notApi.stderr]).to.deep.equal([
        3,
        `switchboard: unexpected answer from ${htmlUrl}/api/v1/rooms (HTTP 200, text/html): is ${htmlUrl} a Switchboard server?\n`,
      ]);
    });

    it('a token for a tenant the server does not know is refused at connect (token create does not invent one)', async () => {
      const minted = await cli(['token', 'create', '--tenant', 'nobody', '--room', 'r', '--user', 'u'], { SIGNING_KEYS });
      expect(minted.code, minted.stderr).to.equal(0);
      const client: TestClient = ioClient(t.url, {
        auth: { token: minted.stdout.trim() },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      });
      clients.push(client);
      const error = await new Promise<Error & { data?: { code: string } }>((resolve) => client.once('connect_error', resolve));
      expect(error.data).to.deep.equal({ code: 'token_invalid', message: 'token names an unknown tenant' });
    });

    it('the compiled bin (tsc -p tsconfig.json, no tsx) runs: help, token create that joins, rooms list', async function () {
      this.timeout(300_000);
      const outDir = join(process.cwd(), 'test-artifacts', 'cli-build');
      rmSync(outDir, { recursive: true, force: true });
      mkdirSync(outDir, { recursive: true });
      const build = spawnSync(
        process.execPath,
        ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--outDir', outDir, '--declaration', 'false', '--sourceMap', 'false'],
        {
          encoding: 'utf8',
        },
      );
      expect(build.status, `${build.stdout}${build.stderr}`).to.equal(0);
      const bin = join(outDir, 'server', 'cli', 'cli.js');
      expect(existsSync(bin)).to.equal(true);
      const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { bin?: Record<string, string> };
      expect(pkg.bin).to.deep.equal({ switchboard: 'dist/server/cli/cli.js' });

      const help = await cli(['--help'], {}, bin);
      expect(help.code).to.equal(0);
      expect(help.stdout).to.include('participants kick <room_id> <user_id>');
      const bad = await cli(['rooms', 'list', '--nope'], {}, bin);
      expect([bad.code, bad.stderr.split('\n')[0]]).to.deep.equal([2, 'switchboard: rooms list: unknown flag --nope']);

      const minted = await cli(['token', 'create', '--tenant', 't1', '--room', 'built', '--user', 'carol'], { SIGNING_KEYS }, bin);
      expect(minted.code, minted.stderr).to.equal(0);
      const carol = await joinWith(t.url, minted.stdout.trim());
      clients.push(carol.client);
      expect(carol.ack.self).to.deep.include({ user_id: 'carol' });

      // startServer's tenant t1 has the API secret "secret-t1".
      const rooms = await cli(['rooms', 'list', '--live'], { SWITCHBOARD_URL: t.url, SWITCHBOARD_API_SECRET: 'secret-t1' }, bin);
      expect(rooms.code, rooms.stderr).to.equal(0);
      expect((JSON.parse(rooms.stdout) as { rooms: { room_id: string }[] }).rooms.map((r) => r.room_id)).to.deep.equal(['built']);
      rmSync(outDir, { recursive: true, force: true });
    });
  });
});
