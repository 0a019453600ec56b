// The Node.js side of bench/footprint and bench/shutdown: a cluster primary
// with WORKERS idle workers.  Prints "online PID" per worker.  On SIGTERM it
// disconnects every worker (Node's graceful path) and exits once all are
// gone, printing nothing more.
const cluster = require('node:cluster');

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || 1);
  cluster.on('online', (w) => process.stdout.write(`online ${w.process.pid}\n`));
  process.on('SIGTERM', () => cluster.disconnect(() => process.exit(0)));
  for (let i = 0; i < n; i++) cluster.fork();
} else {
  const t = setInterval(() => {}, 1 << 30);
  process.on('disconnect', () => clearInterval(t));
}
