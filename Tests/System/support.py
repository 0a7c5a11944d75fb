"""What the system-level tests share: paths, free ports, bounded waits, and the system started natively."""
import os
import pathlib
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "scripts"
SYSTEM = str(SCRIPTS / "system.sh")
SERVERS = str(SCRIPTS / "servers.sh")
VENV_BIN = ROOT / ".local" / "venv" / "bin"
OUTPUT = ROOT / ".local" / "test-output"
SERVICES = ("CONSIGNMENT", "VESSEL", "USER", "EMAIL")
METRICS = SERVICES + ("GATEWAY",)


def bin_dir():
    """Where the built executables are (SHIPPY_BIN_DIR from scripts/test.sh, else asked of SwiftPM)."""
    return os.environ.get("SHIPPY_BIN_DIR") or subprocess.run(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, within, what, every=0.2):
    """Waits for `condition()` to be true, at most `within` seconds; fails the test naming `what` otherwise.
    Returns the condition's (true) value."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(every)


def run(args, env=None, check=True, **kwargs):
    """Runs a command to its end, output captured; a failure shows its output."""
    result = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


class NativeSystem:
    """The whole system as `make start` runs it (scripts/system.sh), on free ports of 127.0.0.1 in a state folder
    of its own, so that a running `make up` is left alone. `stop()` stops what it started and deletes the folder."""

    def __init__(self, prometheus=False, **settings):
        self.state = tempfile.mkdtemp(prefix="test-system.", dir=ROOT / ".local")
        self.prometheus = prometheus
        self.settings = settings
        self.env = self.environment()

    def environment(self):
        ports = {f"SHIPPY_{name}_PORT": str(free_port()) for name in SERVICES + ("GATEWAY",)}
        ports |= {f"SHIPPY_{name}_METRICS_PORT": str(free_port()) for name in METRICS}
        ports["SHIPPY_PROMETHEUS_PORT"] = str(free_port()) if self.prometheus else "0"
        return dict(os.environ, SHIPPY_RUN_DIR=self.state, SHIPPY_SERVERS_DIR=os.path.join(self.state, "servers"),
                    **ports, **self.settings)

    @property
    def gateway(self):
        """The gateway's address: HTTPS with the gateway's own identity, as `make start` serves it (plain HTTP only
        with SHIPPY_PLAINTEXT=1)."""
        scheme = "http" if self.env.get("SHIPPY_PLAINTEXT") == "1" else "https"
        return f"{scheme}://127.0.0.1:{self.env['SHIPPY_GATEWAY_PORT']}"

    @property
    def authority(self):
        """The development authority's certificate, which signed every identity of the system."""
        return os.path.join(self.state, "tls", "ca.pem")

    def tls(self):
        """A client TLS context that trusts the system's authority and nothing else (and checks the host name)."""
        return ssl.create_default_context(cafile=self.authority)

    def system(self, *args, check=True):
        return run([SYSTEM, *args], env=self.env, check=check)

    def start(self):
        # A port found free here may be taken by the time a service binds it (the servers pick theirs in between):
        # then the system starts again on other ports, three times at most.
        for attempt in range(3):
            started = self.system("start", check=False)
            if started.returncode == 0:
                return started.stdout
            if "Address already in use" not in started.stdout + started.stderr or attempt == 2:
                raise AssertionError(f"the system did not start:\n{started.stdout[-2000:]}{started.stderr[-2000:]}")
            self.system("stop", check=False)
            run([SERVERS, "purge"], env=self.env, check=False)
            self.env = self.environment()

    def pids(self):
        """The recorded PID of each process it started: the services, the gateway, Prometheus, the servers."""
        pids = {}
        for folder in (pathlib.Path(self.state), pathlib.Path(self.state) / "servers"):
            for file in folder.glob("*.pid") if folder.is_dir() else []:
                pids[file.stem] = int(file.read_text().split()[0])
        return pids

    def stop(self):
        self.system("stop", check=False)
        run([SERVERS, "purge"], env=self.env, check=False)
        subprocess.run(["rm", "-rf", self.state])


def alive(pid):
    """Whether `pid` runs (a zombie is gone for every purpose but its parent's bookkeeping)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
