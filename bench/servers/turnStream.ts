/**
 * A sustained TURN stream in its own process (so its sending does not disturb the load
 * generator's latency clock): allocates flows through the relay named in argv[3] (JSON
 * {address, port, secret, flows, generator}), then streams ChannelData at the rate asked over
 * IPC, with the load generator the benchmark uses (native or node; bench/lib/nativeBlast.ts).
 */
import { loadGenerator, type GeneratorKind } from '../lib/nativeBlast.js';
import type { TurnEndpoint } from '../lib/turnLoad.js';
import { serveCommands } from '../lib/childCommands.js';
import type { ToServer } from '../lib/ServerProcess.js';

const spec = JSON.parse(process.argv[3] ?? '{}') as TurnEndpoint & { flows: number; generator?: GeneratorKind };

async function main(): Promise<void> {
  const generator = loadGenerator(spec.generator ?? 'node');
  const flows = await generator.open(spec, spec.flows);
  let running: Promise<{ sent: number; achievedRate: number }> | undefined;
  let receivedAtStart = 0;
  const handle = async (message: ToServer): Promise<unknown> => {
    switch (message.cmd) {
      case 'streamStart': {
        const { rate, payload } = message.args as { rate: number; payload: number };
        receivedAtStart = await flows.received();
        running = flows.send(payload, rate, 0);
        return {};
      }
      case 'streamStop': {
        flows.stop();
        const result = await running;
        running = undefined;
        await new Promise((resolve) => setTimeout(resolve, 200));
        return { ...result, received: (await flows.received()) - receivedAtStart, generator: generator.kind };
      }
      case 'usage': {
        const cpu = process.cpuUsage();
        return { cpuS: (cpu.user + cpu.system) / 1e6, rss: process.memoryUsage().rss, heapUsed: 0 };
      }
      case 'close':
        flows.stop();
        await running;
        await flows.close();
        return {};
      default:
        throw new Error(`unknown command ${message.cmd}`);
    }
  };
  serveCommands(handle, { url: '', port: spec.port });
}

main().catch((error: unknown) => {
  console.error('[bench turn stream]', error);
  process.exit(1);
});
