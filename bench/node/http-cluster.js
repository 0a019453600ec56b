// Node's cluster as the HTTP anchor: WORKERS workers running http-app.js
// on one port (the primary accepts and hands connections round-robin,
// Node's default on Linux).  A worker that dies is replaced.  SIGHUP does
// Node's usual rolling reload: for each old worker, fork a new one, wait
// for it to listen, then disconnect the old one (it stops accepting and
// exits once its connections are done; killed after 5 s).
const cluster = require('node:cluster');
const path = require('node:path');

cluster.setupPrimary({ exec: path.join(__dirname, 'http-app.js') });
const n = Number(process.env.WORKERS || 2);
let reloading = false;

cluster.on('exit', (w) => {
  if (!w.exitedAfterDisconnect) cluster.fork();
});

async function reload() {
  if (reloading) return;
  reloading = true;
  for (const old of Object.values(cluster.workers)) {
    const fresh = cluster.fork();
    await new Promise((ok) => fresh.once('listening', ok));
    const t = setTimeout(() => old.process.kill('SIGKILL'), 5000);
    old.once('exit', () => clearTimeout(t));
    old.disconnect();
  }
  reloading = false;
}

process.on('SIGHUP', reload);
process.on('SIGTERM', () => {
  cluster.removeAllListeners('exit');
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
  process.exit(0);
});
for (let i = 0; i < n; i++) cluster.fork();
