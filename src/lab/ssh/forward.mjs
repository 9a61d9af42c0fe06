// The SSH lab's forced command for everything that is not SFTP (sshd's ForceCommand runs it for
// every session; see forced-command.ts). Plain JavaScript so that it starts in tens of
// milliseconds: it hands the command line, verbatim from $SSH_ORIGINAL_COMMAND, to the lab's
// interpreter of Windows command lines (windows-model.ts) over a Unix socket, and prints what the
// modelled Windows command printed, with its exit code. Usage: node forward.mjs HOST SOCKET
import { request } from 'node:http';

const [host, socketPath] = process.argv.slice(2);
const command = process.env.SSH_ORIGINAL_COMMAND ?? '';
const body = JSON.stringify({ host, command });
const req = request(
  {
    socketPath,
    path: '/exec',
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  },
  (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      let answer;
      try {
        answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        process.stderr.write(`lab: the interpreter answered garbage (${error.message})\n`);
        process.exit(255);
      }
      process.stdout.write(answer.stdout ?? '');
      process.stderr.write(answer.stderr ?? '');
      process.stdout.end(() => process.exit(typeof answer.exitCode === 'number' ? answer.exitCode : 255));
    });
  },
);
req.on('error', (error) => {
  process.stderr.write(`lab: the interpreter is not running (${error.message})\n`);
  process.exit(255);
});
req.end(body);
