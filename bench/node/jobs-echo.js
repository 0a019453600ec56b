// The Node.js side of bench/jobs: a cluster primary that exchanges echo
// messages with its workers by process.send, pipelined (CONCURRENCY in
// flight), for SECONDS; or, with RATE set, open loop at RATE messages/s
// with latency measured from each message's due time.  Prints one JSON line.
const cluster = require('node:cluster');
const os = require('node:os');

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || os.availableParallelism());
  const seconds = Number(process.env.SECONDS || 5);
  const conc = Number(process.env.CONCURRENCY || 256);
  const rate = Number(process.env.RATE || 0);
  const payload = 'x'.repeat(Number(process.env.PAYLOAD || 64));
  const workers = [];
  let ready = 0, ok = 0, seq = 0, inflight = 0, done = false;
  const due = new Map();
  const lat = [];
  let start;
  const next = () => workers[seq % workers.length];
  const send = (t) => {
    const id = seq++;
    due.set(id, t);
    inflight++;
    next().send({ id, p: payload });
  };
  const finish = () => {
    const secs = (performance.now() - start) / 1000;
    lat.sort((a, b) => a - b);
    const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * (lat.length - 1)))] : 0;
    console.log(JSON.stringify({ ok, throughput: ok / secs,
      latency_us: { p50: q(0.5) * 1000, p99: q(0.99) * 1000 } }));
    for (const w of workers) w.kill('SIGKILL');
    process.exit(0);
  };
  const onMsg = (m) => {
    ok++;
    inflight--;
    lat.push(performance.now() - due.get(m.id));
    due.delete(m.id);
    if (done) { if (inflight === 0) finish(); return; }
    if (!rate) send(performance.now());
  };
  for (let i = 0; i < n; i++) {
    const w = cluster.fork();
    w.on('message', onMsg);
    w.on('online', () => {
      if (++ready < n) return;
      start = performance.now();
      setTimeout(() => { done = true; if (inflight === 0) finish(); }, seconds * 1000);
      if (!rate) {
        for (let k = 0; k < conc; k++) send(performance.now());
      } else {
        let sent = 0;
        const tick = () => {
          if (done) return;
          const now = performance.now();
          const want = Math.floor((now - start) * rate / 1000);
          while (sent < want) send(start + (sent++ * 1000) / rate);
          setImmediate(tick);
        };
        tick();
      }
    });
    workers.push(w);
  }
} else {
  process.on('message', (m) => process.send(m));
}
