// Prints the Stripe-Signature header for the payload on stdin, from the
// official npm `stripe` library.
// usage: node stripe_sign.mjs SECRET [UNIX_TIMESTAMP]
import { createRequire } from 'node:module';
const require = createRequire(process.env.MESHHOOK_NODE_MODULES + '/');
const Stripe = require('stripe');
const stripe = Stripe('sk_test_unused');
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const payload = Buffer.concat(chunks).toString('utf8');
const args = { payload, secret: process.argv[2] };
if (process.argv[3]) args.timestamp = Number(process.argv[3]);
console.log(JSON.stringify({ 'stripe-signature': stripe.webhooks.generateTestHeaderString(args) }));
