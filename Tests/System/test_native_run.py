"""The native run as a user meets it: `start` in the background, a second `start` says it runs, `demo` prints a
consignment booked on a vessel (its CLIs over mutual TLS, curl to the gateway over HTTPS), the gateway serves HTTPS
only, MongoDB takes TLS only, a CLI without the certificate is refused and told what to set, no service runs in
plaintext, the Prometheus it started scrapes every service as up with the alert rules loaded, and `stop` leaves none
of the processes it started alive."""
import http.client
import os
import re
import subprocess
import urllib.error
import urllib.request

import pymongo
import pytest

from support import ROOT, NativeSystem, alive, bin_dir, run


def test_start_demo_and_stop_leave_nothing_running():
    system = NativeSystem(prometheus=True)
    try:
        system.start()
        second = system.system("start").stdout
        assert "already running" in second, f"a second start did not say it was already running: {second}"
        pids = system.pids()
        assert len(pids) == 9, f"expected 9 processes (4 services, the gateway, Prometheus, 3 servers): {pids}"

        demo = system.system("demo").stdout
        assert re.search(r"^Created consignment ", demo, re.M), demo
        assert re.search(r"^  vessel: +vessel\d+", demo, re.M), f"the consignment has no vessel id:\n{demo}"
        assert re.search(r"/mail/.*\.eml$", demo, re.M), f"no welcome mail:\n{demo}"
        assert re.search(r"^  vessel003  .*  9/12 containers", demo, re.M), f"vessel003's room not taken:\n{demo}"
        assert '"vessel_id" : "vessel003"' in demo, f"the gateway does not list the consignment:\n{demo}"

        # The gateway serves HTTPS with its identity, which the authority verifies; plain HTTP gets no page.
        gateway = system.gateway
        assert gateway.startswith("https://"), gateway
        with urllib.request.urlopen(gateway + "/readyz", timeout=10, context=system.tls()) as ready:
            assert ready.status == 200, ready.status
        try:
            urllib.request.urlopen(gateway.replace("https://", "http://") + "/readyz", timeout=10)
            raise AssertionError("the gateway answered plain HTTP")
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError):
            pass

        # Every gRPC hop is mutual TLS: a CLI in plaintext gets no call, and is told what to set.
        plain = subprocess.run([os.path.join(bin_dir(), "vessel-cli"), "list", "--timeout", "3"], text=True,
                               capture_output=True, env=dict(system.env, SHIPPY_TOKEN="none",
                                                             VESSEL_SERVICE_ADDRESS=f"127.0.0.1:{system.env['SHIPPY_VESSEL_PORT']}"))
        assert plain.returncode == 69 and "TLS_CERTIFICATE" in plain.stderr, f"{plain.returncode}: {plain.stderr}"
        # MongoDB takes TLS only, as PostgreSQL and NATS do: the services' URL asks for it, and a plaintext client
        # finds no server.
        servers = dict(line.split("=", 1) for line in
                       (ROOT / system.state / "servers" / "env").read_text().splitlines())
        mongo_url = servers["SHIPPY_MONGO_URL"].strip('"')
        assert "tls=true" in mongo_url and "tlsCAFile=" in mongo_url, mongo_url
        plaintext_mongo = pymongo.MongoClient(mongo_url.split("/?")[0], serverSelectionTimeoutMS=2000)
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
            plaintext_mongo.admin.command("ping")
        plaintext_mongo.close()
        services = ("vessel-service", "user-service", "consignment-service", "email-service", "api-gateway")
        logs = {name: (ROOT / system.state / "logs" / f"{name}.log").read_text() for name in services}
        plaintext = [name for name, text in logs.items() if "plaintext" in text]
        assert not plaintext, f"services that run in plaintext: {plaintext}"

        # Prometheus scrapes every 5 s: within 30 s each of the four services and the gateway is up.
        targets = run(["python3", str(ROOT / "scripts/prometheus_targets.py"),
                       f"http://127.0.0.1:{system.env['SHIPPY_PROMETHEUS_PORT']}", "5", "30"])
        print(targets.stdout)

        system.system("stop")
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        assert not left, f"still running after stop: {left}"
    finally:
        system.stop()
