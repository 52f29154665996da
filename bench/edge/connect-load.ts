/**
 * New TLS connections per second: `concurrency` loops each open a TLS connection with SNI, wait
 * for the handshake, close, and repeat, for `seconds` or `limit` connections, whichever first.
 * Prints JSON with the rate and handshake latency percentiles.
 */
import { connect } from 'node:tls';

const [portText = '0', serverName = '', secondsText = '5', concurrencyText = '16', limitText = '200000'] =
  process.argv.slice(2);
const port = Number(portText);
const until = performance.now() + Number(secondsText) * 1000;
const limit = Number(limitText);
const latencies: number[] = [];
let failures = 0;
let started = 0;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = connect(
      { host: '127.0.0.1', port, servername: serverName, rejectUnauthorized: false },
      () => {
        latencies.push(performance.now() - t0);
        socket.destroy();
        resolve();
      },
    );
    socket.on('error', () => {
      failures++;
      resolve();
    });
  });
}

async function loop(): Promise<void> {
  while (performance.now() < until && started < limit) {
    started++;
    await once();
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: Number(concurrencyText) }, loop));
const elapsed = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
console.log(
  JSON.stringify({
    connections: latencies.length,
    failures,
    perSecond: latencies.length / elapsed,
    p50: pct(50),
    p99: pct(99),
  }),
);
