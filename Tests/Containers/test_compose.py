"""`make test-containers` (scripts/containers.sh test, which first makes the images): the container path of the
README on the unchanged docker-compose.yml, run by podman-compose, in order:

1. `up`: every service reports healthy;
2. the user story with the CLIs as compose runs them, every gRPC hop over mutual TLS (the identities made first by
   the one-shot `certificates`; a plaintext client at a published port refused and counted): sign up, log in,
   ship consignment.json (on stdin, the form docs/containers.md gives, which works whoever may read the
   checkout's folder), list the fleet; the welcome
   mail in the email service's log; Prometheus scrapes the five targets with the alert rules loaded; the trace
   backend (Jaeger's stand-in, which logs the spans it receives) holds the consignment's trace across both
   services; the gateway lists the consignment over HTTPS with the CLI's token; user-service's sessions with
   PostgreSQL are TLS, which it verifies; MongoDB takes TLS only, and a login;
3. the services run as the image's non-root user;
4. `down` and `up --scale vessel=3`: the old token still works (the signing key survived), the user logs in and
   the consignment is still listed (the volumes persist); listings through the gateway reach each of the three
   vessel replicas, and Prometheus scrapes each;
5. `stop`: every Shippy service, each vessel replica included, exits 0 on SIGTERM;
and `down -v` at the end, whatever happened. State under .local/containers."""
import json
import pathlib
import random
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import urllib.request

import pytest

# The bounded waits and command runner of the system tests, shared rather than written twice.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "System"))
from support import ROOT, run, wait_until  # noqa: E402

STATE = ROOT / ".local" / "containers"
PROJECT = "shippy-test"
SERVICES = ("mongo", "postgres", "nats", "prometheus", "jaeger", "vessel", "user", "consignment", "email", "gateway")
PASSWORD = "correct horse battery"


def compose(*args, **kwargs):
    return run([str(pathlib.Path(sys.executable).parent / "podman-compose"), "--project-name", PROJECT, "--file",
                str(ROOT / "docker-compose.yml"), *args], **kwargs)


def cli(*args, stdin=None, env=()):
    """A CLI as `docker compose run --rm` runs it (no terminal here: -T); podman-compose, unlike Docker's, wants
    its profile named."""
    extra = [item for name, value in env for item in ("-e", f"{name}={value}")]
    return compose("--profile", "cli", "run", "--rm", "-T", *extra, *args, check=False, input=stdin)


def container(service, replica=1):
    return f"{PROJECT}_{service}_{replica}"


def project_containers(*flags):
    names = run(["podman", "ps", *flags, "--filter", f"label=io.podman.compose.project={PROJECT}",
                 "--format", "{{.Names}}"], check=False).stdout
    return names.split()


def inspect(name, template):
    return run(["podman", "inspect", "--format", template, name], check=False).stdout.strip()


def address(name):
    """A container's address on compose's network, where its unpublished ports are."""
    return inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


def prometheus_targets(count):
    result = run([sys.executable, str(ROOT / "scripts/prometheus_targets.py"), "http://127.0.0.1:9090", str(count),
                  "60"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class HealthChecks(threading.Thread):
    """podman runs health checks from systemd timers, which these machines lack: without this every container
    would stay "starting". (podman 4.3 also makes podman-compose ignore `condition: service_healthy`, which needs
    podman 4.6: the services start together and wait for their dependencies with their own startup retry.)"""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for name in project_containers():
                subprocess.run(["podman", "healthcheck", "run", name], capture_output=True)
            self.stopped.wait(2)


class Project:
    """The compose project: up, down, and what the steps share (the user, the token)."""

    def __init__(self):
        self.vessels = 1
        self.email = f"ewan-{random.randrange(10**6)}@example.com"
        self.token = None

    def up(self, vessels):
        self.vessels = vessels
        # The identities first, as Docker's compose orders it (`service_completed_successfully`); podman-compose
        # here ignores the condition (see HealthChecks).
        made = compose("run", "--rm", "-T", "certificates", check=False)
        assert made.returncode == 0, f"the certificates service:\n{made.stdout}{made.stderr}"
        result = compose("up", "-d", "--scale", f"vessel={vessels}", check=False)
        (STATE / "compose-up.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, f"compose up:\n{result.stderr[-3000:]}"
        names = [container(s) for s in SERVICES if s != "vessel"]
        names += [container("vessel", replica) for replica in range(1, vessels + 1)]
        for name in names:
            try:
                wait_until(lambda: inspect(name, "{{.State.Health.Status}}") == "healthy", 120, f"{name} healthy",
                           every=1.0)
            except AssertionError:
                print(run(["podman", "logs", "--tail", "20", name], check=False).stderr)
                raise
        print(run(["podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
                   "--format", "  {{.Names}}  {{.Status}}"]).stdout)

    def down(self):
        """Removes the project's containers (every replica: podman-compose's `down` reaches only the first of each
        service) and its volumes; what podman says goes to down.log."""
        log = [compose("down", "-v", check=False).stderr]
        for _ in range(3):
            left = project_containers("-a")
            if not left:
                break
            log.append(run(["podman", "rm", "-f", "--time", "10", *left], check=False).stderr)
        volumes = run(["podman", "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={PROJECT}"],
                      check=False).stdout.split()
        if volumes:
            log.append(run(["podman", "volume", "rm", "-f", *volumes], check=False).stderr)
        (STATE / "down.log").write_text("\n".join(log))

    def login(self):
        result = cli("user-cli", "login", "--email", self.email, env=[("SHIPPY_PASSWORD", PASSWORD)])
        token = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        assert token.count(".") == 2, f"user-cli login printed no token:\n{result.stdout}{result.stderr}"
        return token

    def ship(self):
        return cli("consignment-cli", "-", self.token, stdin=(ROOT / "consignment.json").read_text())


@pytest.fixture(scope="module")
def project():
    STATE.mkdir(parents=True, exist_ok=True)
    checks = HealthChecks()
    checks.start()
    project = Project()
    project.down()
    try:
        project.up(vessels=1)
        yield project
    finally:
        checks.stopped.set()
        checks.join()
        project.down()


def test_the_user_story_with_the_clis(project):
    # The first sign-up right after start once met PostgreSQL answering slowly: as a user told "unavailable"
    # would, try again, with a new address each time so that a half-done try cannot collide.
    for attempt in range(3):
        signed_up = cli("user-cli", "--name", "Ewan Valentine", "--email", project.email, "--company", "BBC",
                        "--password", PASSWORD)
        if signed_up.returncode == 0:
            break
        assert attempt < 2 and "unavailable" in signed_up.stderr, f"user-cli could not sign up:\n{signed_up.stderr}"
        print(f"sign-up {attempt + 1} answered unavailable, trying again")
        project.email = f"ewan-{random.randrange(10**6)}@example.com"
    project.token = project.login()
    print(f"signed up and logged in as {project.email}:\n{signed_up.stdout}")
    shipped = project.ship()
    assert shipped.returncode == 0, f"consignment-cli:\n{shipped.stdout}{shipped.stderr}"
    assert re.search(r"^Created consignment", shipped.stdout, re.M), shipped.stdout
    assert re.search(r"^Your consignments \(1\):", shipped.stdout, re.M), shipped.stdout
    fleet = cli("vessel-cli", "list", project.token)
    assert fleet.returncode == 0, fleet.stderr
    print(f"shipped consignment.json, then listed the fleet:\n{shipped.stdout}{fleet.stdout}")


def test_the_welcome_mail_is_in_the_email_services_log(project):
    def mailed():
        logs = run(["podman", "logs", container("email")], check=False)
        return [line for line in (logs.stdout + logs.stderr).splitlines()
                if "welcome mail sent" in line and project.email in line]
    print("\n".join(wait_until(mailed, 30, f"a welcome mail to {project.email} in the email service's log",
                                every=1.0)))


def test_prometheus_scrapes_every_service_and_the_trace_crosses_both_services(project):
    print(prometheus_targets(5))

    def trace():
        logs = run(["podman", "logs", container("jaeger")], check=False).stdout
        spans = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        for create in (s for s in spans if s["name"] == "consignment.ShippingService/CreateConsignment"):
            spans_of_trace = [s for s in spans if s["trace_id"] == create["trace_id"]]
            if any(s["service"] == "vessel-service" and s["name"] == "vessel.VesselService/Book"
                   for s in spans_of_trace):
                return sorted({s["service"] + " " + s["name"] for s in spans_of_trace})
        return None
    print("the consignment's trace: " + ", ".join(
        wait_until(trace, 30, "a CreateConsignment trace holding vessel-service's Book at the trace backend",
                         every=1.0)))


def authority():
    """The development authority `certificates` made, from the CLIs' identity volume."""
    folder = run(["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", f"{PROJECT}_tls-cli"]).stdout.strip()
    return ssl.create_default_context(cafile=f"{folder}/ca.crt")


def gateway(path, token):
    """The gateway over HTTPS, its certificate verified against the development authority for 127.0.0.1."""
    request = urllib.request.Request("https://127.0.0.1:8080" + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=10, context=authority()) as response:
        return json.load(response)


def test_the_gateway_lists_the_consignment(project):
    page = gateway("/v1/consignments", project.token)
    listed = [c["id"] + " on " + c["vessel_id"] for c in page["consignments"]]
    assert listed, "the gateway lists no consignment"
    print(f"the gateway (https://127.0.0.1:8080) lists: {', '.join(listed)}")


def metric(host, port, pattern):
    """The sum of the samples matching `pattern` (a regular expression of the sample's name and labels) in a
    service's /metrics."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(n) for n in re.findall(rf"^{pattern} (\S+)", text, re.M))


def test_every_grpc_hop_is_mutual_tls_and_a_plaintext_client_is_refused(project):
    # The user story above went over TLS: the CLIs with their identity, consignment-service to vessel-service, the
    # gateway to each. No service started in plaintext, and each loaded the certificate of its own name.
    for service, identity in (("vessel", "vessel-service"), ("user", "user-service"),
                              ("consignment", "consignment-service"), ("email", "email-service"),
                              ("gateway", "api-gateway")):
        logs = run(["podman", "logs", container(service)], check=False)
        text = logs.stdout + logs.stderr
        assert "PLAINTEXT" not in text, f"{service} runs in plaintext:\n{text[-2000:]}"
        assert re.search(rf"subject=CN={identity} .*certificate loaded", text), \
            f"{service} logged no certificate of {identity}:\n{text[-2000:]}"
    # A plaintext HTTP/2 client at user-service's published port: no HTTP/2 answer, counted as not TLS.
    user = address(container("user"))
    refusals = r'tls_handshake_refusals_total\{reason="not_tls"\}'
    before = metric(user, 9053, refusals)
    with socket.create_connection(("127.0.0.1", 50053), timeout=10) as plaintext:
        plaintext.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        answer = b""
        try:
            while chunk := plaintext.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    # A TLS server answers bytes it cannot read with at most an alert record (0x15), never an HTTP/2 frame.
    assert not answer or answer[0] == 0x15, f"a plaintext client was answered: {answer[:40]!r}"
    wait_until(lambda: metric(user, 9053, refusals) > before, 10, "the refusal counted as not_tls")
    print(f"every service over mutual TLS with its own identity; a plaintext client refused ({len(answer)} bytes "
          "back) and counted as not_tls")


def test_user_service_talks_to_postgresql_over_verified_tls(project):
    # PostgreSQL serves TLS with the identity `certificates` made for it, and user-service's URL says verify-full
    # with the authority: had the certificate not named postgres, or come from another authority, user-service
    # would not have started. Every session from the network is encrypted (pg_stat_ssl).
    assert run(["podman", "exec", container("postgres"), "psql", "-U", "shippy", "-d", "shippy", "-Atc",
                "show ssl"]).stdout.strip() == "on"
    query = ("select count(*) filter (where s.ssl), count(*) filter (where not s.ssl) from pg_stat_ssl s "
             "join pg_stat_activity a using (pid) where a.usename = 'shippy' and a.client_addr is not null")
    counts = run(["podman", "exec", container("postgres"), "psql", "-U", "shippy", "-d", "shippy", "-Atc", query])
    encrypted, plaintext = map(int, counts.stdout.strip().split("|"))
    assert encrypted > 0 and plaintext == 0, f"{encrypted} sessions over TLS, {plaintext} in plaintext"
    print(f"PostgreSQL: ssl on; user-service's {encrypted} sessions all over TLS")


def mongo_command(host, command, collection, tls=None):
    """The reply to one MongoDB command ({command: collection, $db: "shippy"}, an OP_MSG) at host:27017, over TLS
    when given a context (verified for the name mongo); the raw reply, or what the connection did instead."""
    def text(name, value):
        encoded = value.encode() + b"\x00"
        return b"\x02" + name.encode() + b"\x00" + struct.pack("<i", len(encoded)) + encoded
    body = text(command, collection) + text("$db", "shippy")
    document = struct.pack("<i", len(body) + 5) + body + b"\x00"
    payload = struct.pack("<I", 0) + b"\x00" + document
    message = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    try:
        with socket.create_connection((host, 27017), timeout=10) as plain:
            connection = tls.wrap_socket(plain, server_hostname="mongo") if tls else plain
            connection.sendall(message)
            reply = connection.recv(65536)
    except (OSError, ssl.SSLError) as error:
        return f"{type(error).__name__}: {error}".encode()
    return reply


def test_mongodb_takes_tls_only_and_a_password(project):
    # The services' URLs log in over TLS, which the user story above used. A client in plaintext gets nothing; one
    # over TLS without credentials is told to log in.
    mongo = address(container("mongo"))
    plaintext = mongo_command(mongo, "count", "vessels")
    answered = len(plaintext) >= 16 and struct.unpack("<i", plaintext[12:16])[0] == 2013  # an OP_MSG reply
    assert not answered, f"MongoDB answered plaintext: {plaintext[:80]!r}"
    anonymous = mongo_command(mongo, "count", "vessels", tls=authority())
    assert b"requires authentication" in anonymous, f"MongoDB answered without a login: {anonymous[:200]!r}"
    print(f"MongoDB: plaintext refused ({plaintext[:40]!r}); over TLS without a password: requires authentication")


def test_the_services_run_as_the_images_user(project):
    for service in ("vessel", "user", "consignment", "email", "gateway"):
        uid = run(["podman", "exec", container(service), "id", "-u"]).stdout.strip()
        assert uid == "10001", f"{service} runs as uid {uid}, not the image's shippy user"


def test_after_down_and_up_with_three_vessels_everything_is_kept(project):
    compose("down", check=False)
    project.up(vessels=3)
    old = cli("vessel-cli", "list", project.token)
    assert old.returncode == 0, f"after a restart the old token is refused (the signing key did not survive):\n{old.stderr}"
    project.token = project.login()
    again = project.ship()
    assert re.search(r"^Your consignments \(2\):", again.stdout, re.M), \
        f"after a restart the first consignment is gone:\n{again.stdout}{again.stderr}"

    # The gateway's one client balances over the three replicas, each counted by its own /metrics. The gateway
    # looks the name up every 5 s, so a replica started after it is called once it is known: list until each
    # replica has answered some and at least 30 were made, within 60 s.
    addresses = [address(container("vessel", r)) for r in (1, 2, 3)]

    def listed(host):
        return metric(host, 9052, r'grpc_server_handled_total\{[^}]*grpc_method="List"[^}]*\}')
    before = [listed(a) for a in addresses]
    calls = 0

    def every_replica_answered():
        nonlocal calls
        for _ in range(10):
            gateway("/v1/vessels", project.token)
            calls += 1
        counts = [int(listed(a) - b) for a, b in zip(addresses, before)]
        return counts if all(counts) and calls >= 30 else None
    counts = wait_until(every_replica_answered, 60, "listings through the gateway on every vessel replica", every=0)
    print(f"{calls} listings: " + ", ".join(f"vessel_{i + 1} {n}" for i, n in enumerate(counts)))
    prometheus_targets(7)


def test_every_shippy_service_exits_0_on_sigterm(project):
    # In dependency order first (the gateway before the services, the services before their servers), then the
    # replicas `compose stop` leaves running; each must have exited (a running container's exit code reads 0 too).
    compose("stop", check=False)
    left = project_containers()
    if left:
        # podman's complaints about the systemd timers of health checks, which these machines lack, go to stop.log.
        stopped = run(["podman", "stop", "--time", "30", *left], check=False)
        (STATE / "stop.log").write_text(stopped.stdout + stopped.stderr)
        assert stopped.returncode == 0, f"podman stop of the remaining replicas: see {STATE / 'stop.log'}"
    names = [container("vessel", r) for r in (1, 2, 3)]
    names += [container(s) for s in ("user", "consignment", "email", "gateway")]
    for name in names:
        status = inspect(name, "{{.State.Status}} {{.State.ExitCode}}")
        assert status == "exited 0", f"{name} on SIGTERM: {status}\n" + run(
            ["podman", "logs", "--tail", "20", name], check=False).stderr
    servers = {s: inspect(container(s), "{{.State.ExitCode}}") for s in ("mongo", "postgres", "nats", "prometheus",
                                                                          "jaeger")}
    size = int(run(["podman", "image", "inspect", "localhost/shippy:latest", "--format", "{{.Size}}"]).stdout)
    print(f"every Shippy service exited 0 on SIGTERM (the servers: {servers}); shippy:latest is {size // 10**6} MB")
