#!/bin/sh
# Installs the third-party webhook signers the tests compare against, once
# per machine, under $HOME/.cache/meshhook: PyPI standardwebhooks and PyJWT
# (with cryptography) in a venv, npm stripe, @octokit/webhooks-methods and
# jose. Exits non-zero with a clear message when a registry is unreachable.
set -eu
ROOT="${HOME}/.cache/meshhook"
VENV="$ROOT/venv"
NODE="$ROOT/node"
mkdir -p "$ROOT"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import standardwebhooks, jwt, cryptography' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'standardwebhooks' 'PyJWT[crypto]' \
        || { echo "signers: pip could not install standardwebhooks/PyJWT (is PyPI reachable?)" >&2; exit 1; }
fi
if [ ! -d "$NODE/node_modules/stripe" ] || [ ! -d "$NODE/node_modules/@octokit/webhooks-methods" ] || [ ! -d "$NODE/node_modules/jose" ]; then
    mkdir -p "$NODE"
    [ -f "$NODE/package.json" ] || echo '{"name":"meshhook-signers","private":true}' > "$NODE/package.json"
    npm install --silent --prefix "$NODE" stripe @octokit/webhooks-methods jose >/dev/null \
        || { echo "signers: npm could not install stripe/@octokit/webhooks-methods/jose (is the npm registry reachable?)" >&2; exit 1; }
fi
echo ok
