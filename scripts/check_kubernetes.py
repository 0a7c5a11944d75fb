#!/usr/bin/env python3
"""Checks deploy/kubernetes (part of `make test`): every manifest against the schemas of a current Kubernetes
release (kubernetes-validate, strict: unknown fields fail), a policy scan (checkov) with no finding left but those
skipped in the manifest with their reason, and what docs/many-machines.md promises of them: at least two replicas, rolling
updates that never go below them, probes on the services' own health, a termination grace that covers preStop,
SHUTDOWN_GRACE and the cancellation, a PodDisruptionBudget, an autoscaler and a NetworkPolicy for each
Deployment, each with its identity (TLS_* from its Secret shippy-NAME-tls, probed by its own healthcheck, never
PLAINTEXT), NATS and MongoDB over TLS only (MongoDB with a login) and PostgreSQL over TLS, each with its own
identity, and an Ingress that serves the gateway over TLS only. Run with the venv that has the two tools (scripts/test.sh makes it, .local/k8s-venv)."""
import glob
import json
import os
import subprocess
import sys

import yaml

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
folder = os.path.join(root, "deploy", "kubernetes")
bin_dir = os.path.dirname(sys.executable)
KUBERNETES = "1.37.0"  # the schemas of a current release (kubernetes-validate 1.37 ships them)

files = sorted(f for f in glob.glob(os.path.join(folder, "*.yaml")) if not f.endswith("kustomization.yaml"))
problems = []

validate = subprocess.run([os.path.join(bin_dir, "kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES] + files,
                          capture_output=True, text=True)
if validate.returncode != 0:
    problems.append("kubernetes-validate:\n" + validate.stdout + validate.stderr)

# --skip-download: no network here, and the scan needs none.
scan = subprocess.run([os.path.join(bin_dir, "checkov"), "-d", folder, "--framework", "kubernetes", "--compact",
                       "--skip-download", "--output", "json"], capture_output=True, text=True)
try:
    results = json.loads(scan.stdout)["results"]
    for failed in results["failed_checks"]:
        problems.append(f"checkov: {failed['check_id']} {failed['check_name']}: {failed['resource']} ({failed['file_path']})")
    skipped = [(s["check_id"], s["resource"], s["check_result"].get("suppress_comment", ""))
               for s in results["skipped_checks"]]
except (ValueError, KeyError, TypeError):
    problems.append(f"checkov did not report: exit {scan.returncode}\n{scan.stdout[-2000:]}{scan.stderr[-2000:]}")
    skipped = []
for check, resource, reason in skipped:
    if not reason.strip():
        problems.append(f"checkov: {check} is skipped for {resource} without a reason")

documents = [d for f in files for d in yaml.safe_load_all(open(f)) if d]
kinds = {}
for d in documents:
    kinds.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
grace = int(kinds["ConfigMap"]["shippy-config"]["data"]["SHUTDOWN_GRACE"])
for name, deployment in kinds["Deployment"].items():
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    if spec["replicas"] < 2:
        problems.append(f"{name}: fewer than two replicas")
    if spec["strategy"]["rollingUpdate"]["maxUnavailable"] != 0:
        problems.append(f"{name}: a rolling update may go below the wanted count")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container.get(probe, {})
        # A gRPC service's own `healthcheck` (the kubelet's gRPC probe speaks no TLS), or the gateway's HTTP.
        if check.get("exec", {}).get("command", [None])[0] == container["command"][0]:
            if check["exec"]["command"][1] != "healthcheck" or check.get("timeoutSeconds", 1) < 4:
                problems.append(f"{name}: its {probe} runs something else than its healthcheck, or within 1 s")
        elif "httpGet" not in check:
            problems.append(f"{name}: no healthcheck or HTTP {probe}")
    # Its identity: mutual TLS on every gRPC hop, from a Secret in cert-manager's shape; never plaintext.
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    secrets = {volume["name"]: volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume}
    identity = [volume for volume, secret in secrets.items() if secret == f"shippy-{name}-tls"]
    folder = mounts.get(identity[0]) if identity else None
    wanted = {"TLS_CERTIFICATE": "tls.crt", "TLS_KEY": "tls.key", "TLS_CA": "ca.crt"}
    if not folder or any(env.get(key) != f"{folder}/{file}" for key, file in wanted.items()):
        problems.append(f"{name}: TLS_CERTIFICATE, TLS_KEY and TLS_CA are not the files of its Secret shippy-{name}-tls")
    if "PLAINTEXT" in env or "PLAINTEXT" in kinds["ConfigMap"]["shippy-config"]["data"]:
        problems.append(f"{name}: PLAINTEXT is set")
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # preStop, then SHUTDOWN_GRACE for calls in flight, 5 s for cancelled calls (ServiceRunner), 5 s to spare.
    if pod["terminationGracePeriodSeconds"] != pre_stop + grace + 10:
        problems.append(f"{name}: terminationGracePeriodSeconds is not preStop {pre_stop} + SHUTDOWN_GRACE {grace} + 10")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        if name not in kinds.get(kind, {}):
            problems.append(f"{name}: no {kind}")
for name in ("vessel", "user", "consignment"):
    if kinds["Service"][name]["spec"].get("clusterIP") != "None":
        problems.append(f"{name}: its Service is not headless, so clients cannot balance over its pods")



def serves_its_identity(server, arguments):
    """Whether the StatefulSet `server` is given `arguments` and mounts its Secret shippy-SERVER-tls at /tls."""
    spec = kinds["StatefulSet"][server]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    mounts = {mount["name"]: mount["mountPath"] for mount in container.get("volumeMounts", [])}
    identity = [volume["name"] for volume in spec.get("volumes", [])
                if volume.get("secret", {}).get("secretName") == f"shippy-{server}-tls"]
    return arguments in " ".join(container.get("args", [])) and identity and mounts.get(identity[0]) == "/tls"


# NATS takes TLS only, with its identity from its Secret, and its clients verify it; no URL of it says nats://.
# PostgreSQL serves TLS with its own (user-service's URL, in a Secret, verifies it: many-machines.md).
if not serves_its_identity("nats", "--tls --tlscert /tls/tls.crt --tlskey /tls/tls.key"):
    problems.append("nats: does not take TLS with the identity of its Secret shippy-nats-tls at /tls")
if not serves_its_identity("postgres", "-c ssl=on -c ssl_cert_file=/tls/tls.crt -c ssl_key_file=/tls/tls.key"):
    problems.append("postgres: does not serve TLS with the identity of its Secret shippy-postgres-tls at /tls")
# MongoDB takes TLS only, and a login: the official image requires one once it has made its root user.
if not serves_its_identity("mongo", "--tlsMode requireTLS --tlsCertificateKeyFile /pem/mongo.pem --tlsCAFile /tls/ca.crt"):
    problems.append("mongo: does not take TLS only with the identity of its Secret shippy-mongo-tls at /tls")
mongo_environment = {variable["name"] for variable in
                     kinds["StatefulSet"]["mongo"]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
if not {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD_FILE"} <= mongo_environment:
    problems.append("mongo: makes no root user from a Secret, so it requires no login")
config = kinds["ConfigMap"]["shippy-config"]["data"]
if config.get("NATS_CA") != "/tls/ca.crt" or not config.get("NATS_URL", "tls://").startswith("tls://"):
    problems.append("shippy-config: NATS's clients do not verify it against their identity's authority over tls://")

# The way in is HTTPS: the Ingress to the gateway terminates TLS for every host it routes.
ingress = kinds.get("Ingress", {}).get("gateway")
if not ingress:
    problems.append("gateway: no Ingress")
else:
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    secured = {host for tls in ingress["spec"].get("tls", []) if tls.get("secretName") for host in tls["hosts"]}
    if hosts - secured:
        problems.append(f"gateway's Ingress: no TLS Secret for {sorted(hosts - secured)}")

if problems:
    print("check-kubernetes: FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check-kubernetes: {len(documents)} resources valid against Kubernetes {KUBERNETES} (strict); checkov: no "
      f"finding left, {len(skipped)} skipped with their reasons:")
for check, resource, reason in skipped:
    print(f"  {check} {resource}: {reason}")
