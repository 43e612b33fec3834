#!/bin/sh
# n8n's container start: import restoreflow's two header credentials (the
# gateway key the workflows send, the secret their webhooks require; n8n
# stores them encrypted) and the workflows with the gateway URL filled in,
# publish the workflows (n8n activates published workflows when it starts),
# drop the plain-text secrets from the environment, then run the server.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node /setup/prepare.mjs /workflows "$work"
n8n import:credentials --input="$work/credentials.json"
n8n import:workflow --separate --input="$work/workflows"
for f in "$work"/workflows/*.json; do
  id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).id)' "$f")
  n8n publish:workflow --id="$id"
done
rm -rf "$work"
unset RESTOREFLOW_API_KEY RESTOREFLOW_WEBHOOK_SECRET
exec n8n start
