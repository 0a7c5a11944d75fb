#!/usr/bin/env python3
"""`make up` stopped the way people stop it, as part of `make test`, on free ports in a state folder of its own
(a running `make up` is left alone):

1. `make up`, then Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it (make, the
   script, the log follower, the services, Prometheus and the servers all receive it);
2. a crash: every process of a `make start` killed with SIGKILL, leaving stale PID files and PostgreSQL's
   postmaster.pid behind; then `scripts/system.sh up` recovers, and Ctrl-C stops it;
3. `scripts/system.sh up` again, stopped with TERM.

Each time every process it started is gone, and nothing follows the log follower's lines but the stop
lines. The script exits 0; GNU make, as every make does, re-raises the SIGINT it received once its recipe
has ended, so `make up` ends by that signal (a shell shows 130)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(message):
    print(f"test-up-signals: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def terminal_like():
    # A terminal's foreground job has the default SIGINT disposition, whatever started this test.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def started_pids(run):
    pids = {}
    for folder in (run, os.path.join(run, "servers")):
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.endswith(".pid"):
                with open(os.path.join(folder, name)) as f:
                    pids[name[:-4]] = int(f.read().split()[0])
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose but its parent's bookkeeping.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def up_then(run, env, command, how):
    log = os.path.join(run, f"up-{len(os.listdir(run))}.out")
    with open(log, "w") as out:
        make = subprocess.Popen(command, cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=terminal_like)
        deadline = time.time() + 1200  # the first build of a fresh clone is the long part
        while "Following the logs" not in open(log).read():
            if make.poll() is not None:
                fail(f"make up exited {make.returncode} before the system ran:\n{open(log).read()[-3000:]}")
            if time.time() > deadline:
                fail("make up did not start the system in time")
            time.sleep(0.5)
        pids = started_pids(run)
        if len(pids) != 9:
            fail(f"expected 9 processes (4 services, the gateway, Prometheus, 3 servers), found {pids}")
        if how == "SIGINT":
            os.killpg(make.pid, signal.SIGINT)
        else:
            make.send_signal(signal.SIGTERM)
        try:
            status = make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            fail(f"make up did not exit within 60 s of {how}")
    output = open(log).read()
    expected = (0, -signal.SIGINT) if command[0] == "make" and how == "SIGINT" else (0,)
    if status not in expected:
        fail(f"{' '.join(command)} exited {status} after {how}:\n{output[-3000:]}")
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    if left:
        fail(f"still running after {how}: {left}")
    after = output.split("Following the logs; Ctrl-C stops everything.", 1)[1]
    # What follows is the services' own log lines (the follower) and then the stop lines, nothing else.
    stray = [line for line in after.splitlines()
             if line.strip() and not line.startswith("==> ") and not re.match(r"^\d{4}-\d\d-\d\dT", line)
             and not re.match(r"^stopped [\w-]+ \(pid \d+\)$", line)]
    if stray:
        fail(f"unexpected output after {how}: {stray}")
    print(f"test-up-signals: {' '.join(command)}: {how} stopped all {len(pids)} processes, exit {status}, output clean")


def crash(run, env):
    """Starts the system in the background, then kills every process of it at once, as a power cut would."""
    subprocess.run([os.path.join(root, "scripts/system.sh"), "start"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids = started_pids(run)
    for name, pid in pids.items():
        # PostgreSQL's workers share the postmaster's process group: kill them all, as a crash would.
        os.killpg(pid, signal.SIGKILL) if name == "postgres" else os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    status = subprocess.run([os.path.join(root, "scripts/system.sh"), "status"], env=env, capture_output=True,
                            text=True).stdout
    if "running" in status:
        fail(f"status says something runs after every process was killed:\n{status}")
    print("test-up-signals: after a crash, status says every process is stopped")


def main():
    run = tempfile.mkdtemp(prefix="test-up.", dir=os.path.join(root, ".local"))
    env = dict(os.environ, SHIPPY_RUN_DIR=run, SHIPPY_SERVERS_DIR=os.path.join(run, "servers"),
               SHIPPY_CONSIGNMENT_PORT=str(free_port()), SHIPPY_VESSEL_PORT=str(free_port()),
               SHIPPY_USER_PORT=str(free_port()), SHIPPY_EMAIL_PORT=str(free_port()),
               SHIPPY_PROMETHEUS_PORT=str(free_port()), SHIPPY_GATEWAY_PORT=str(free_port()),
               **{f"SHIPPY_{name}_METRICS_PORT": str(free_port())
                  for name in ("CONSIGNMENT", "VESSEL", "USER", "EMAIL", "GATEWAY")})
    try:
        up_then(run, env, ["make", "--no-print-directory", "up"], "SIGINT")
        crash(run, env)
        up_then(run, env, [os.path.join(root, "scripts/system.sh"), "up"], "SIGINT")
        up_then(run, env, [os.path.join(root, "scripts/system.sh"), "up"], "SIGTERM")
    finally:
        subprocess.run([os.path.join(root, "scripts/system.sh"), "stop"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([os.path.join(root, "scripts/servers.sh"), "purge"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", run])


main()
