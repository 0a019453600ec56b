// The Node.js side of bench/restart: a minimal cluster primary that re-forks
// a worker whenever one exits, and prints "online PID" when the replacement
// reports online -- the equivalent of corral's READY.
const cluster = require('node:cluster');

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || 1);
  cluster.on('online', (w) => process.stdout.write(`online ${w.process.pid}\n`));
  cluster.on('exit', () => cluster.fork());
  process.on('SIGTERM', () => {
    cluster.removeAllListeners('exit');
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGKILL');
    process.exit(0);
  });
  for (let i = 0; i < n; i++) cluster.fork();
} else {
  setInterval(() => {}, 1 << 30); // stay alive, idle
}
