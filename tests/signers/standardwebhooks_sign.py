"""Prints the Standard Webhooks headers for the payload on stdin, signed by
the reference library (PyPI `standardwebhooks`).

usage: standardwebhooks_sign.py SECRET MSG_ID UNIX_TIMESTAMP
"""
import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

secret, msg_id, ts = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = sys.stdin.read()
sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), payload)
print(json.dumps({"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}))
