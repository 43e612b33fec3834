#!/bin/sh
# n8n's container start: import restoreflow's workflows, publish them (n8n
# activates published workflows when it starts), then run the server.
set -eu
n8n import:workflow --separate --input=/workflows
for f in /workflows/*.json; do
  id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).id)' "$f")
  n8n publish:workflow --id="$id"
done
exec n8n start
