// Prints X-Hub-Signature-256 for the payload on stdin, from GitHub's own
// npm `@octokit/webhooks-methods`.
// usage: node github_sign.mjs SECRET
const { sign } = await import(process.env.MESHHOOK_NODE_MODULES + '/@octokit/webhooks-methods/dist-node/index.js');
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const payload = Buffer.concat(chunks).toString('utf8');
console.log(JSON.stringify({ 'x-hub-signature-256': await sign(process.argv[2], payload) }));
