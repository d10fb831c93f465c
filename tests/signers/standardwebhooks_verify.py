"""Verifies a Standard Webhooks delivery with the reference library (PyPI
`standardwebhooks`) and prints the verified payload as JSON.

usage: standardwebhooks_verify.py SECRET HEADERS_JSON   (body on stdin)
Exits 1 with the library's error if the signature does not verify.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

secret, headers = sys.argv[1], json.loads(sys.argv[2])
body = sys.stdin.read()
try:
    payload = Webhook(secret).verify(body, headers)
except Exception as e:  # the library raises WebhookVerificationError
    print(f"verification failed: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"ok": True, "payload": payload}))
