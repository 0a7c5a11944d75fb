"""`make up` stopped the way people stop it, on free ports in a state folder of its own:

1. `make up`, then Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it (make, the
   script, the log follower, the services, Prometheus and the servers all receive it);
2. a crash: every process of a `make start` killed with SIGKILL, leaving stale PID files and PostgreSQL's
   postmaster.pid behind; then `scripts/system.sh up` recovers, and Ctrl-C stops it;
3. `scripts/system.sh up` again, stopped with TERM.

Each time every process it started is gone, and nothing follows the log follower's lines but the stop lines.
The script exits 0; GNU make, as every make does, re-raises the SIGINT it received once its recipe has ended,
so `make up` ends by that signal (a shell shows 130)."""
import os
import re
import signal
import subprocess

import pytest

from support import ROOT, SYSTEM, NativeSystem, alive, wait_until


@pytest.fixture(scope="module")
def system():
    system = NativeSystem(prometheus=True)
    yield system
    system.stop()


def terminal_like():
    # A terminal's foreground job has the default SIGINT disposition, whatever started this test.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def up_then_signal(system, command, how):
    log = os.path.join(system.state, f"up-{len(os.listdir(system.state))}.out")
    with open(log, "w") as out:
        up = subprocess.Popen(command, cwd=ROOT, env=system.env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=terminal_like)
        try:
            # The first build of a fresh clone is the long part.
            wait_until(lambda: "Following the logs" in open(log).read() or up.poll() is not None, 1200,
                       "make up ran the system", every=0.5)
            assert up.poll() is None, f"{command} exited {up.returncode} before the system ran:\n{open(log).read()}"
            pids = system.pids()
            assert len(pids) == 9, f"expected 9 processes (4 services, the gateway, Prometheus, 3 servers): {pids}"
            if how == "SIGINT":
                os.killpg(up.pid, signal.SIGINT)
            else:
                up.send_signal(signal.SIGTERM)
            status = up.wait(timeout=60)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
    output = open(log).read()
    expected = (0, -signal.SIGINT) if command[0] == "make" and how == "SIGINT" else (0,)
    assert status in expected, f"{' '.join(command)} exited {status} after {how}:\n{output[-3000:]}"
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not left, f"still running after {how}: {left}"
    after = output.split("Following the logs; Ctrl-C stops everything.", 1)[1]
    # What follows is the services' own log lines (the follower) and then the stop lines, nothing else.
    stray = [line for line in after.splitlines()
             if line.strip() and not line.startswith("==> ") and not re.match(r"^\d{4}-\d\d-\d\dT", line)
             and not re.match(r"^stopped [\w-]+ \(pid \d+\)$", line)]
    assert not stray, f"unexpected output after {how}: {stray}"
    print(f"{' '.join(command)}: {how} stopped all {len(pids)} processes, exit {status}, output clean")


def test_ctrl_c_stops_make_up(system):
    up_then_signal(system, ["make", "--no-print-directory", "up"], "SIGINT")


def test_after_a_crash_status_says_stopped_and_up_recovers(system):
    system.system("start")
    pids = system.pids()
    for name, pid in pids.items():
        # PostgreSQL's workers share the postmaster's process group: kill them all, as a crash would.
        os.killpg(pid, signal.SIGKILL) if name == "postgres" else os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in pids.values()), 10, "every killed process gone")
    status = system.system("status", check=False).stdout
    assert "running" not in status, f"status says something runs after every process was killed:\n{status}"
    up_then_signal(system, [SYSTEM, "up"], "SIGINT")


def test_term_stops_system_up(system):
    up_then_signal(system, [SYSTEM, "up"], "SIGTERM")
