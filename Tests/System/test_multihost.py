"""Many replicas on many hosts, on this machine (run as root).

Each test host is a network namespace (`ip netns`) with a veth pair to a bridge in a `core` namespace, where
dnsmasq answers for the names and a MongoDB-compatible server (secantusdb) holds the fleet. Every vessel-service
replica runs on its own host and listens only on that host's address; the client, `shippy-bench spread`, runs
on a host of its own and calls `dns:///vessel.shippy.test:50052` through the transport every Shippy client
uses (shared/Discovery): round-robin over what the name resolves to, keepalive, retries of idempotent calls.

Scenarios, each printing its counts (calls, failures, calls per replica):
  spread       load over three replicas reaches each of them;
  sigkill      one replica killed with SIGKILL during steady load: zero failed calls;
  link-down    one host's link taken down during load: zero failed calls, each within its 5 s deadline;
  rolling      every replica restarted in turn (SIGTERM, drain, start) under load: zero failed calls;
  scale-out    a fourth replica added to the name gets calls within the re-resolution interval (5 s);
  canary       10 % of 2,000 calls go to the canary name: between 7 and 13 %;
  zone         with a zone name, calls stay on the zone's replicas until both are killed, then go to the
               others without a failure.
Everything it starts (namespaces, processes, files) is removed at the end, also on failure; the logs are kept in
.local/test-output/multihost."""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from support import OUTPUT, VENV_BIN, bin_dir

venv_bin = str(VENV_BIN)

PREFIX = f"shmh{os.getpid() % 100000}"
SUBNET = "10.231.0"
CORE = f"{SUBNET}.1"
HOSTS = {"client": 10, "h1": 11, "h2": 12, "h3": 13, "h4": 14, "canary": 21}
NAME, ZONE_NAME, CANARY_NAME = "vessel.shippy.test", "vessel-a.shippy.test", "vessel-canary.shippy.test"
PORT = 50052
REFRESH_SECONDS = 5  # DiscoveredName.refreshInterval

work = tempfile.mkdtemp(prefix="shippy-multihost-")
output = str(OUTPUT / "multihost")
os.chmod(work, 0o755)  # dnsmasq reads the hosts file as nobody
started = []  # Popen of every process, stopped at the end
namespaces = []


def log(message):
    print(message, flush=True)


def fail(message):
    raise AssertionError(message)


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


def ns(host):
    return f"{PREFIX}-{host}"


def address(host):
    return f"{SUBNET}.{HOSTS[host]}"


# --- The network ------------------------------------------------------------------------------------------

def build_network():
    core = ns("core")
    sh("ip", "netns", "add", core)
    namespaces.append(core)
    sh("ip", "-n", core, "link", "set", "lo", "up")
    sh("ip", "-n", core, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", core, "addr", "add", f"{CORE}/24", "dev", "br0")
    sh("ip", "-n", core, "link", "set", "br0", "up")
    for host in HOSTS:
        name = ns(host)
        sh("ip", "netns", "add", name)
        namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", core, "link", "add", f"p-{host}", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "-n", core, "link", "set", f"p-{host}", "master", "br0", "up")
        sh("ip", "-n", name, "addr", "add", f"{address(host)}/24", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        # `ip netns exec` mounts this over /etc/resolv.conf: the host asks the test's dnsmasq.
        os.makedirs(f"/etc/netns/{name}", exist_ok=True)
        with open(f"/etc/netns/{name}/resolv.conf", "w") as f:
            f.write(f"nameserver {CORE}\noptions timeout:1 attempts:2\n")


def set_link(host, up):
    sh("ip", "-n", ns("core"), "link", "set", f"p-{host}", "up" if up else "down")


def tear_down():
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    for name in namespaces:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
    # The logs stay for a look after a failure.
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(work, output, ignore=shutil.ignore_patterns("mongo"))
    shutil.rmtree(work, ignore_errors=True)


def run_in(host, args, log_name, env=None):
    out = open(os.path.join(work, log_name), "ab")
    process = subprocess.Popen(["ip", "netns", "exec", ns(host)] + args, stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    started.append(process)
    return process


# --- DNS: dnsmasq answers from a hosts file; SIGHUP re-reads it ------------------------------------------

class Names:
    def __init__(self):
        self.path = os.path.join(work, "hosts")
        self.records = {NAME: ["h1", "h2", "h3"], ZONE_NAME: ["h1", "h2"], CANARY_NAME: ["canary"]}
        self.write()
        self.process = run_in("core", [
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
            f"--listen-address={CORE}", f"--addn-hosts={self.path}", "--local-ttl=0", "--log-facility=-",
            f"--pid-file={work}/dnsmasq.pid"], "dnsmasq.log")

    def write(self):
        with open(self.path, "w") as f:
            for name, hosts in self.records.items():
                f.writelines(f"{address(host)} {name}\n" for host in hosts)
        os.chmod(self.path, 0o644)

    def add(self, name, host):
        self.records[name].append(host)
        self.write()
        self.process.send_signal(signal.SIGHUP)


# --- Tokens: the test is the issuer; vessel-service holds its public key -----------------------------------

def make_token():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with open(os.path.join(work, "public.pem"), "w") as f:
        f.write(pem)
    # The key id Shippy derives from the key itself (TokenKeys.keyID): base64url SHA-256 of the PEM, 16 chars.
    kid = base64.urlsafe_b64encode(hashlib.sha256(pem.encode()).digest()).decode()[:16]

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT", "kid": kid}
    claims = {"sub": "multihost-test", "email": "multihost@test.example", "name": "Multi Host", "company": "Shippy",
              "iat": now, "exp": now + 3600, "iss": "shippy-user-service", "aud": ["shippy"], "roles": ["user"]}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    path = os.path.join(work, "token")
    with open(path, "w") as f:
        f.write(token)
    return path


# --- Replicas ------------------------------------------------------------------------------------------------

class Replicas:
    def __init__(self):
        self.processes = {}

    def start(self, host):
        self.processes[host] = run_in(host, [os.path.join(bin_dir(), "vessel-service")], f"vessel-{host}.log", {
            "HOST": address(host), "PORT": str(PORT), "METRICS_PORT": "9052", "MONGO_URL": f"mongodb://{CORE}:27017",
            "MONGO_DATABASE": "shippy_multihost", "JWT_PUBLIC_KEY_FILE": os.path.join(work, "public.pem"),
            "SHUTDOWN_GRACE": "5", "LOG_LEVEL": "warning",
            # Plaintext, explicitly: what this test is about is the replicas' names and addresses, not TLS.
            "PLAINTEXT": "true",
            # No libmongoc counters in /dev/shm: this test kills replicas, which would leave their files behind.
            "MONGOC_DISABLE_SHM": "1"})

    def wait_serving(self, *hosts):
        for host in hosts:
            result = subprocess.run(
                ["ip", "netns", "exec", ns("client"), os.path.join(bin_dir(), "shippy-bench"), "serving-time",
                 "--address", f"{address(host)}:{PORT}", "--within", "60"], capture_output=True, text=True)
            if result.returncode != 0:
                fail(f"vessel-service on {host} did not become SERVING: {result.stderr.strip()}\n"
                     + open(os.path.join(work, f"vessel-{host}.log")).read()[-2000:])

    def kill(self, host):
        self.processes[host].kill()
        self.processes[host].wait()

    def stop(self, host):
        """SIGTERM, as an orchestrator drains a replica: NOT_SERVING, GOAWAY, the calls in flight finish."""
        self.processes[host].terminate()
        try:
            code = self.processes[host].wait(timeout=20)
        except subprocess.TimeoutExpired:
            fail(f"vessel-service on {host} did not stop within 20 s of SIGTERM")
        if code != 0:
            fail(f"vessel-service on {host} exited {code} on SIGTERM")


# --- Load ---------------------------------------------------------------------------------------------------

class Load:
    """`shippy-bench spread` on the client host; its JSON lines are read as they come."""

    def __init__(self, *extra, rate=150):
        self.lines = []
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns("client"), os.path.join(bin_dir(), "shippy-bench"), "spread",
             "--vessel-service", f"dns:///{NAME}:{PORT}", "--token-file", os.path.join(work, "token"),
             "--concurrency", "8", "--rate", str(rate), "--timeout", "5"] + list(extra),
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "spread.log"), "ab"), text=True)
        started.append(self.process)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def latest(self):
        return self.lines[-1][1] if self.lines else {"calls": 0, "failures": 0, "replicas": {}}

    def wait_for(self, condition, within, what):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.lines and condition(self.latest()):
                return time.monotonic()
            time.sleep(0.1)
        fail(f"{what} within {within} s; last counts: {self.latest()}")

    def finish(self, label):
        """Ends the load (SIGINT: the calls in flight finish; a run of --calls ends by itself), prints its counts."""
        if "--calls" not in self.process.args and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        counts = self.latest()
        if not counts.get("done"):
            fail(f"{label}: spread ended without its final counts (exit {self.process.returncode})")
        log(f"{label}: {counts['calls']} calls, {counts['failures']} failed, per replica "
            + ", ".join(f"{replica_host(a)} {n}" for a, n in sorted(counts["replicas"].items()))
            + (f", errors {counts['errors']}" if counts["errors"] else "")
            + f"; slowest call {counts['slowest_ms']} ms")
        return counts


def replica_host(peer):
    ip = peer.rsplit(":", 1)[0]
    return next((host for host in HOSTS if address(host) == ip), peer)


def per_host(counts):
    totals = {}
    for peer, calls in counts["replicas"].items():
        totals[replica_host(peer)] = totals.get(replica_host(peer), 0) + calls
    return totals


def expect_no_failures(label, counts):
    if counts["failures"]:
        described = [line for line in open(os.path.join(work, "spread.log")) if "call failed" in line]
        fail(f"{label}: {counts['failures']} calls failed: {counts['errors']}\n" + "".join(described[-20:]))


# --- The scenarios ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """The test hosts, dnsmasq, the MongoDB-compatible server, a token, and vessel-service on h1, h2 and h3."""
    assert os.geteuid() == 0, "the multi-host tests need root (network namespaces): run make test as root"
    for tool in ("ip", "dnsmasq"):
        assert shutil.which(tool), f"{tool} is missing; scripts/test.sh installs it (apt-get install iproute2 dnsmasq-base)"
    try:
        build_network()
        names = Names()
        run_in("core", [os.path.join(venv_bin, "secantusd-py"), "--host", CORE, "--port", "27017",
                        "--storage-path", os.path.join(work, "mongo"), "--standalone"], "mongo.log")
        make_token()
        replicas = Replicas()
        replicas.start("h1")  # first alone: it seeds the fleet
        replicas.wait_serving("h1")
        for host in ("h2", "h3"):
            replicas.start(host)
        replicas.wait_serving("h2", "h3")
        yield names, replicas
    finally:
        tear_down()


def test_spread_reaches_every_replica(cluster):
    load = Load("--calls", "600")
    counts = load.finish("spread over h1 h2 h3")
    expect_no_failures("spread", counts)
    if set(per_host(counts)) != {"h1", "h2", "h3"} or min(per_host(counts).values()) < 100:
        fail(f"spread: the calls did not reach each replica evenly: {per_host(counts)}")


def test_sigkill_of_a_replica_fails_no_call(cluster):
    _, replicas = cluster
    load = Load("--duration", "120")
    load.wait_for(lambda c: c["calls"] >= 300, 30, "300 calls")
    replicas.kill("h2")
    log("sigkill: vessel-service on h2 killed")
    after = load.latest()["calls"]
    load.wait_for(lambda c: c["calls"] >= after + 600, 30, "600 calls after the kill")
    counts = load.finish("sigkill of h2")
    expect_no_failures("sigkill", counts)
    replicas.start("h2")
    replicas.wait_serving("h2")


def test_a_link_down_fails_no_call_and_none_waits_past_its_deadline(cluster):
    load = Load("--duration", "120")
    load.wait_for(lambda c: per_host(c).get("h2", 0) >= 50, 30, "calls reaching the restarted h2")
    set_link("h3", False)
    log("link-down: h3's link is down (its packets are dropped)")
    try:
        after = load.latest()["calls"]
        load.wait_for(lambda c: c["calls"] >= after + 900, 40, "900 calls after the link went down")
        counts = load.finish("link of h3 down")
    finally:
        set_link("h3", True)
    expect_no_failures("link-down", counts)
    if counts["slowest_ms"] >= 5000:
        fail(f"link-down: a call took {counts['slowest_ms']} ms, past its 5 s deadline")


def test_a_rolling_restart_fails_no_call(cluster):
    _, replicas = cluster
    load = Load("--duration", "300")
    load.wait_for(lambda c: per_host(c).get("h3", 0) >= 20, 30, "calls reaching h3 again after its link came up")
    for host in ("h1", "h2", "h3"):
        replicas.stop(host)
        replicas.start(host)
        replicas.wait_serving(host)
        served = per_host(load.latest()).get(host, 0)
        load.wait_for(lambda c: per_host(c).get(host, 0) > served, 30, f"calls reaching the restarted {host}")
        log(f"rolling: {host} restarted and answering again")
    counts = load.finish("rolling restart of h1 h2 h3")
    expect_no_failures("rolling", counts)


def test_a_replica_added_to_the_name_gets_calls_within_the_refresh(cluster):
    names, replicas = cluster
    load = Load("--duration", "60")
    load.wait_for(lambda c: c["calls"] >= 150, 30, "150 calls")
    replicas.start("h4")
    replicas.wait_serving("h4")
    names.add(NAME, "h4")
    added = time.monotonic()
    first = load.wait_for(lambda c: per_host(c).get("h4", 0) > 0, REFRESH_SECONDS + 5,
                          "calls reaching h4 after it was added to the name")
    # Counts come every half second and the resolver wakes every 0.2 s: a second's allowance for both.
    log(f"scale-out: h4 answered its first calls {first - added:.1f} s after it was added to {NAME}")
    if first - added > REFRESH_SECONDS + 1:
        fail(f"scale-out: h4 got calls only {first - added:.1f} s after it was added")
    counts = load.finish("scale-out to h4")
    expect_no_failures("scale-out", counts)


def test_the_canary_gets_its_share(cluster):
    _, replicas = cluster
    replicas.start("canary")
    replicas.wait_serving("canary")
    load = Load("--calls", "2000", "--canary", f"dns:///{CANARY_NAME}:{PORT}", "--canary-percent", "10", rate=300)
    counts = load.finish("canary at 10 %")
    expect_no_failures("canary", counts)
    share = per_host(counts).get("canary", 0) / counts["calls"]
    log(f"canary: {share:.1%} of {counts['calls']} calls on the canary")
    if not 0.07 <= share <= 0.13:
        fail(f"canary: {share:.1%} of the calls went to the canary, not 7–13 %")


def test_calls_stay_in_the_zone_until_its_replicas_are_gone(cluster):
    _, replicas = cluster
    load = Load("--duration", "120", "--zone", f"dns:///{ZONE_NAME}:{PORT}")
    load.wait_for(lambda c: c["calls"] >= 600, 30, "600 calls")
    outside = {host: n for host, n in per_host(load.latest()).items() if host not in ("h1", "h2")}
    log(f"zone: {load.latest()['calls']} calls so far, outside the zone: {outside or 'none'}")
    if outside:
        fail(f"zone: calls left the zone while its replicas were up: {outside}")
    replicas.kill("h1")
    replicas.kill("h2")
    log("zone: h1 and h2, the zone's replicas, killed")
    before = {host: per_host(load.latest()).get(host, 0) for host in ("h3", "h4")}
    load.wait_for(lambda c: all(per_host(c).get(h, 0) > before[h] + 100 for h in before), 30,
                  "calls on h3 and h4 after the zone's replicas were killed")
    counts = load.finish("zone a (h1 h2), then its replicas killed")
    expect_no_failures("zone", counts)
