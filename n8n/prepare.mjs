// Prepares restoreflow's n8n workflows for import into one n8n instance:
//   node n8n/prepare.mjs WORKFLOWS_DIR OUT_DIR
// reads RESTOREFLOW_GATEWAY_URL, RESTOREFLOW_API_KEY and
// RESTOREFLOW_WEBHOOK_SECRET from the environment and writes
//   OUT_DIR/workflows/*.json  the workflows with the gateway URL filled in
//                             (n8n's nodes may not read the environment);
//   OUT_DIR/credentials.json  two header credentials for `n8n import:credentials`,
//                             which encrypts them: the gateway key the HTTP
//                             nodes send (X-API-Key) and the secret the
//                             webhooks require (X-Restoreflow-Webhook-Secret).
// The secrets exist in plain text only in OUT_DIR: delete it after import.
import { mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error("usage: node prepare.mjs WORKFLOWS_DIR OUT_DIR");
  process.exit(2);
}
const need = (name, min) => {
  const v = process.env[name] ?? "";
  if (v.length < min) {
    console.error(`${name} must be set (at least ${min} characters)`);
    process.exit(2);
  }
  return v;
};
const gateway = need("RESTOREFLOW_GATEWAY_URL", 1).replace(/\/+$/, "");
const key = need("RESTOREFLOW_API_KEY", 16);
const secret = need("RESTOREFLOW_WEBHOOK_SECRET", 16);

mkdirSync(join(out, "workflows"), { recursive: true, mode: 0o700 });
for (const f of readdirSync(src).filter((f) => f.endsWith(".json"))) {
  const text = readFileSync(join(src, f), "utf8").replaceAll(
    "{{ $env.RESTOREFLOW_GATEWAY_URL }}",
    gateway,
  );
  if (text.includes("$env.")) {
    console.error(`${f} still reads the environment`);
    process.exit(1);
  }
  writeFileSync(join(out, "workflows", f), text);
}
const credentials = [
  {
    id: "rfGatewayKey0001",
    name: "restoreflow gateway key",
    type: "httpHeaderAuth",
    data: { name: "X-API-Key", value: key },
  },
  {
    id: "rfWebhookKey0001",
    name: "restoreflow webhook secret",
    type: "httpHeaderAuth",
    data: { name: "X-Restoreflow-Webhook-Secret", value: secret },
  },
];
const file = join(out, "credentials.json");
writeFileSync(file, JSON.stringify(credentials, null, 2));
chmodSync(file, 0o600);
