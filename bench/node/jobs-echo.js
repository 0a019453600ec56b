// The Node.js side of bench/jobs: a cluster primary that exchanges echo
// messages with its workers by process.send, pipelined (CONCURRENCY in
// flight), for SECONDS; or, with RATE set, open loop at RATE messages/s
// with latency measured from each message's due time.  Prints one JSON
// line.  PAYLOAD is the message's payload size in bytes (64).
//
// The open loop is paced the way corral-load paces corral, and without
// spinning: a pacer thread (worker_threads) sleeps until the next message
// is due (Atomics.wait, to the microsecond; setTimeout only has
// milliseconds), at most every GAP_US (100, corral-load's gap between
// requests with --batch), then wakes the primary's loop, which sends every
// message due by then.  Each message's latency counts from its due time,
// as corral-load counts it; "pacing_us" reports how late the primary sent
// (p50, p99), the share of that latency that is the harness's.
const cluster = require('node:cluster');
const os = require('node:os');
const { Worker } = require('node:worker_threads');

const nowUs = () => Number(process.hrtime.bigint()) / 1000;

// The pacer thread: started (and warmed up) before the run, it says
// "ready", waits for the start time, then posts "send up to k" when
// message k-1 falls due.
const PACER = `
const { parentPort, workerData } = require('node:worker_threads');
const { rate, gapUs, seconds } = workerData;
const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const cell = new Int32Array(new SharedArrayBuffer(4));
parentPort.once('message', (startUs) => {
const endUs = startUs + seconds * 1e6;
let sent = 0, last = 0;
for (;;) {
  const due = startUs + (sent * 1e6) / rate;
  if (due >= endUs) break;
  const at = Math.max(due, last + gapUs);
  const wait = at - nowUs();
  if (wait > 0) Atomics.wait(cell, 0, 0, wait / 1000); // sleeps, in ms
  last = nowUs();
  let k = sent;
  while (startUs + (k * 1e6) / rate <= last && startUs + (k * 1e6) / rate < endUs) k++;
  if (k > sent) { parentPort.postMessage(k); sent = k; }
}
parentPort.postMessage(-1);
});
parentPort.postMessage('ready');
`;

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || os.availableParallelism());
  const seconds = Number(process.env.SECONDS || 5);
  const conc = Number(process.env.CONCURRENCY || 256);
  const rate = Number(process.env.RATE || 0);
  const gapUs = Number(process.env.GAP_US || 100);
  const payload = 'x'.repeat(Number(process.env.PAYLOAD || 64));
  const workers = [];
  let ready = 0, ok = 0, seq = 0, inflight = 0, done = false;
  const due = new Map();
  const lat = [];
  const late = [];
  let start, startUs;
  const next = () => workers[seq % workers.length];
  const send = (t) => {
    const id = seq++;
    due.set(id, t);
    inflight++;
    next().send({ id, p: payload });
  };
  const q = (v, p) => v.length ? v[Math.min(v.length - 1, Math.floor(p * (v.length - 1)))] : 0;
  const finish = () => {
    const secs = (performance.now() - start) / 1000;
    lat.sort((a, b) => a - b);
    late.sort((a, b) => a - b);
    console.log(JSON.stringify({ ok, throughput: ok / secs,
      latency_us: { p50: q(lat, 0.5), p99: q(lat, 0.99) },
      pacing_us: { p50: q(late, 0.5), p99: q(late, 0.99) } }));
    for (const w of workers) w.kill('SIGKILL');
    process.exit(0);
  };
  const onMsg = (m) => {
    ok++;
    inflight--;
    lat.push(nowUs() - due.get(m.id));
    due.delete(m.id);
    if (done) { if (inflight === 0) finish(); return; }
    if (!rate) send(nowUs());
  };
  // The pacer boots (tens of ms) before the workers are forked.
  let pacer = null;
  const forkAll = () => { for (let i = 0; i < n; i++) fork(); };
  if (rate) {
    pacer = new Worker(PACER, { eval: true, workerData: { rate, gapUs, seconds } });
    pacer.on('message', (k) => {
      if (k === 'ready') { forkAll(); return; }
      if (k < 0) return;
      const t = nowUs();
      while (seq < k) {
        const d = startUs + (seq * 1e6) / rate;
        late.push(t - d);
        send(d);
      }
    });
  }
  const fork = () => {
    const w = cluster.fork();
    w.on('message', onMsg);
    w.on('online', () => {
      if (++ready < n) return;
      // Settle for 300 ms first, as bench/jobs.sh lets corral settle.
      setTimeout(run, 300);
    });
    workers.push(w);
  };
  const run = () => {
      start = performance.now();
      startUs = nowUs();
      setTimeout(() => { done = true; if (inflight === 0) finish(); }, seconds * 1000);
      if (!rate) {
        for (let k = 0; k < conc; k++) send(nowUs());
        return;
      }
      pacer.postMessage(startUs);
  };
  if (!rate) forkAll();
} else {
  process.on('message', (m) => process.send(m));
}
