// The HTTP anchor's app: the same tiny body as examples/http.so's GET /,
// HTTP/1.1 keep-alive (Node's defaults).  Run under http-cluster.js, or
// by PM2 in cluster mode (pm2 start http-app.js -i 2).  PORT from the
// environment.  Graceful stop on SIGINT (what pm2 reload sends) and
// SIGTERM: stop accepting, let requests in flight finish (Node 20's
// server.close() also closes idle keep-alive connections), then exit.
const http = require('node:http');

const body = 'Hello, world!\n';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => {
  if (process.send) process.send('ready'); // PM2's wait_ready
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
