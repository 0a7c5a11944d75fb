#!/usr/bin/env python3
"""`make chaos`: breaks a running Shippy on purpose under a steady load, then proves what must still hold.

Starts the whole system natively on free ports of 127.0.0.1 (two replicas each of consignment-service and
vessel-service, listed in their callers' addresses; one each of user-service, email-service and the gateway;
PostgreSQL, NATS with JetStream and the MongoDB-compatible server from scripts/servers.sh), runs a mixed load
through the gateway (sign-ups with logins, bookings with idempotency keys, reads), and injects each fault in
turn: SIGKILL of each process (restarted a second later, as an orchestrator would), SIGSTOP past the callers'
deadlines then SIGCONT, a restart of each server, and a rolling SIGTERM restart of every service. The order
comes from a seed (printed; --seed replays it). After the load stops and the reservations have been swept, it
checks the invariants (bookings, users, welcome mails, recovery, bounded harm) and writes the report and its
timeline picture. Exit status 0 only when every invariant held.

    chaos.py [--seed N] [--faults kill:user-service,restart:nats] [--short] [--build release|debug]
             [--report CHAOS.md]

Everything it starts lives under .local/chaos and is stopped, by the PIDs it recorded, at the end.
"""
import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, ".local", "chaos")
SERVERS = os.path.join(RUN, "servers")
ADMIN = "chaos-admin@chaos.example"
PASSWORD = "chaos-password-1"
# Deadlines short enough that a stopped process outlasts them, and recovery settings that finish a booking cut
# short within seconds (the crash-consistency test's values).
STOP_SECONDS = 12
SERVER_DOWN_SECONDS = 5  # longer than a readiness probe's interval (2 s) plus a ping's failure
GATEWAY_TIMEOUT = "10"
CLIENT_TIMEOUT = 20
RECOVERY_BOUND = 60  # seconds from a fault's end to every service SERVING again
GRACE_AFTER_RECOVERY = 5  # seconds after recovery before a failed call counts against it


def say(text):
    print(text, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the system ----------------------------------------------------------------------------------------------

class Service:
    """One service process: started, killed, stopped, continued and restarted by its PID."""

    def __init__(self, name, binary, port, environment, grpc=True):
        self.name, self.binary, self.port, self.grpc = name, binary, port, grpc
        self.environment = environment
        self.process = None
        self.expected_exit = False
        self.log = os.path.join(RUN, "logs", f"{name}.log")

    def start(self):
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "MONGOC_DISABLE_SHM": "1",
               "HOST": "127.0.0.1", "PORT": str(self.port), "METRICS_PORT": str(free_port()),
               # Plaintext, explicitly: the faults injected here are processes and servers, not the wire.
               "PLAINTEXT": "true"}
        env.update(self.environment)
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([self.binary], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.expected_exit = False

    def signal(self, number):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, number)

    def kill_and_restart(self):
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.process.wait()
        time.sleep(1)
        self.start()

    def terminate_and_restart(self):
        self.expected_exit = True
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"chaos: {self.name} did not stop within 30 s of SIGTERM")
        code = self.process.returncode
        self.start()
        return code

    def stop(self):
        if self.process and self.process.poll() is None:
            self.expected_exit = True
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()

    def serving(self):
        if self.process is None or self.process.poll() is not None:
            return False
        if not self.grpc:
            return http_call("GET", f"127.0.0.1:{self.port}", "/readyz", timeout=2)[0] == 200
        result = subprocess.run([self.binary, "healthcheck", "--address", f"127.0.0.1:{self.port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        return result.returncode == 0


class System:
    def __init__(self, bin_dir):
        self.bin = bin_dir
        os.makedirs(os.path.join(RUN, "logs"), exist_ok=True)
        os.makedirs(os.path.join(RUN, "keys"), exist_ok=True)
        self.mail = os.path.join(RUN, "mail")
        self.servers_env = {}
        self.services = []

    def servers(self, command, *names):
        env = dict(os.environ, SHIPPY_SERVERS_DIR=SERVERS)
        subprocess.run([os.path.join(ROOT, "scripts", "servers.sh"), command, *names], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self):
        self.servers("start")
        with open(os.path.join(SERVERS, "env")) as env:
            for line in env:
                key, _, value = line.strip().partition("=")
                self.servers_env[key] = value.strip('"')
        keys = os.path.join(RUN, "keys")
        mongo, postgres, nats = (self.servers_env[k] for k in
                                 ("SHIPPY_MONGO_URL", "SHIPPY_POSTGRES_URL", "SHIPPY_NATS_URL"))
        ports = {name: free_port() for name in
                 ("vessel-1", "vessel-2", "consignment-1", "consignment-2", "user", "email", "gateway")}
        vessels = f"127.0.0.1:{ports['vessel-1']},127.0.0.1:{ports['vessel-2']}"
        consignments = f"127.0.0.1:{ports['consignment-1']},127.0.0.1:{ports['consignment-2']}"
        public_key = {"JWT_PUBLIC_KEY_FILE": f"{keys}/public.pem"}

        def service(name, binary, port, grpc=True, **environment):
            self.services.append(Service(name, os.path.join(self.bin, binary), port, environment, grpc))

        # user-service first: it writes the key pair that the others verify with.
        nats_ca = self.servers_env["SHIPPY_NATS_CA"]
        service("user-service", "user-service", ports["user"], POSTGRES_URL=postgres, NATS_URL=nats, NATS_CA=nats_ca,
                JWT_GENERATE_KEY="true", JWT_PRIVATE_KEY_FILE=f"{keys}/signing.pem", BCRYPT_COST="4",
                **public_key)
        for index in (1, 2):
            service(f"vessel-service-{index}", "vessel-service", ports[f"vessel-{index}"], MONGO_URL=mongo,
                    RESERVATION_LIFETIME="10", SWEEP_INTERVAL="1", **public_key)
        for index in (1, 2):
            service(f"consignment-service-{index}", "consignment-service", ports[f"consignment-{index}"],
                    MONGO_URL=mongo, VESSEL_SERVICE_ADDRESS=vessels, VESSEL_TIMEOUT="2",
                    BOOKING_RECOVERY_AFTER="5", NATS_URL=nats, NATS_CA=nats_ca, **public_key)
        service("email-service", "email-service", ports["email"], NATS_URL=nats, NATS_CA=nats_ca, MAILER="files",
                MAIL_DIR=self.mail)
        service("api-gateway", "api-gateway", ports["gateway"], grpc=False,
                USER_SERVICE_ADDRESS=f"127.0.0.1:{ports['user']}", CONSIGNMENT_SERVICE_ADDRESS=consignments,
                VESSEL_SERVICE_ADDRESS=vessels, REQUEST_TIMEOUT=GATEWAY_TIMEOUT, RATE_LIMIT_AUTH="1000000",
                NATS_URL=nats, NATS_CA=nats_ca)
        self.gateway = f"127.0.0.1:{ports['gateway']}"
        self.addresses = {"user": f"127.0.0.1:{ports['user']}", "vessel": vessels, "consignment": consignments}
        for item in self.services:
            item.start()
            if item.name == "user-service":
                wait_for(lambda: os.path.exists(f"{keys}/public.pem"), 60, "user-service's public key")
        wait_for(self.all_serving, 120, "every service SERVING")

    def all_serving(self):
        return all(item.serving() for item in self.services)

    def service(self, name):
        return next(item for item in self.services if item.name == name)

    def stop(self):
        for item in reversed(self.services):
            item.stop()
        if os.path.isdir(SERVERS):
            self.servers("purge")


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit(f"chaos: {what} did not happen within {seconds} s")


def http_call(method, address, path, body=None, token=None, headers=None, timeout=CLIENT_TIMEOUT):
    """(status, parsed JSON or None); status 0 when no answer came (refused, reset, timed out)."""
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        connection.close()


# --- the load ------------------------------------------------------------------------------------------------

class Load:
    """Sign-ups with logins, bookings with idempotency keys (retried with the same key until answered), a cancel of
    every fourth booking (retried until answered), reads. Every call is recorded: (time, kind, status)."""

    def __init__(self, gateway, bookers=3, readers=1):
        self.gateway = gateway
        self.calls = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.tokens = []
        self.signed_up = {}  # email -> password, answered 201
        self.booked = collections.defaultdict(set)  # idempotency key -> consignment ids answered 201
        self.booked_owner = {}  # consignment id -> (email, consignment as answered)
        self.cancel_asked = set()  # consignment ids a cancel was sent for (it may or may not have begun)
        self.cancelled = set()  # consignment ids answered 200, cancelled
        self.threads = ([threading.Thread(target=self.sign_ups, daemon=True)]
                        + [threading.Thread(target=self.bookings, args=(n,), daemon=True) for n in range(bookers)]
                        + [threading.Thread(target=self.reads, daemon=True) for _ in range(readers)])

    def call(self, kind, method, path, body=None, token=None, headers=None):
        """Makes and records the call: (when it started, kind, status, seconds it took, the problem's detail)."""
        began = time.monotonic()
        status, answer = http_call(method, self.gateway, path, body, token, headers)
        detail = answer.get("detail", "") if isinstance(answer, dict) and status >= 400 else ""
        with self.lock:
            self.calls.append((began, kind, status, time.monotonic() - began, detail))
        return status, answer

    def start(self):
        self.running.set()
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.running.clear()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT * 8)

    def sign_ups(self):
        while self.running.is_set():
            email = f"user-{uuid.uuid4().hex[:12]}@chaos.example"
            status, _ = self.call("sign-up", "POST", "/v1/users",
                                  {"name": "Chaos User", "email": email, "password": PASSWORD})
            if status == 201:
                with self.lock:
                    self.signed_up[email] = PASSWORD
                status, session = self.call("log-in", "POST", "/v1/sessions", {"email": email, "password": PASSWORD})
                if status == 200:
                    with self.lock:
                        self.tokens.append((email, session["token"]))
            time.sleep(0.5)

    def a_token(self):
        with self.lock:
            return random.choice(self.tokens) if self.tokens else None

    def bookings(self, worker):
        while self.running.is_set():
            owner = self.a_token()
            if owner is None:
                time.sleep(0.2)
                continue
            email, token = owner
            key = f"chaos-{worker}-{uuid.uuid4().hex}"
            body = {"description": "chaos", "weight": random.randint(1, 500),
                    "containers": [{"customer_id": "c", "origin": "Rotterdam"}]}
            # The same key until it is answered (or the campaign ends): a retry books once.
            for _ in range(20):
                status, answer = self.call("booking", "POST", "/v1/consignments", body, token,
                                           {"Idempotency-Key": key})
                if status == 201:
                    with self.lock:
                        self.booked[key].add(answer["id"])
                        self.booked_owner[answer["id"]] = (email, answer)
                    if random.random() < 0.25:
                        self.cancel(answer["id"], token)
                    break
                if status not in (0, 500, 502, 503, 504) or not self.running.is_set():
                    break
                time.sleep(0.5)
            # A steady pace, not a saturation: the figures are about faults, and the MongoDB-compatible server
            # slows down on large collections.
            time.sleep(0.3)

    def cancel(self, consignment_id, token):
        """Cancels until answered (a cancel once begun is finished, and another answers it as it is)."""
        with self.lock:
            self.cancel_asked.add(consignment_id)
        for _ in range(20):
            status, answer = self.call("cancel", "POST", f"/v1/consignments/{consignment_id}/cancel", None, token)
            if status == 200 and answer.get("status") == "cancelled":
                with self.lock:
                    self.cancelled.add(consignment_id)
                return
            if status not in (0, 500, 502, 503, 504) or not self.running.is_set():
                return
            time.sleep(0.5)

    def reads(self):
        while self.running.is_set():
            owner = self.a_token()
            if owner:
                self.call("list-consignments", "GET", "/v1/consignments?page_size=5", token=owner[1])
                self.call("list-vessels", "GET", "/v1/vessels?page_size=5", token=owner[1])
            time.sleep(0.3)


class BenchLoad:
    """gRPC reads straight to the services beside the gateway's load: `shippy-bench reads` (ValidateToken,
    FindAvailable, GetConsignments at a steady rate) over the replica lists, in back-to-back runs of 20 s until
    the campaign ends. Its failures are reported by code; they are not an invariant (a run's window is coarse)."""

    def __init__(self, system, bin_dir):
        self.system, self.bench = system, os.path.join(bin_dir, "shippy-bench")
        self.running = threading.Event()
        self.calls, self.errors, self.runs_failed = 0, collections.Counter(), 0
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self):
        self.running.set()
        self.thread.start()

    def stop(self):
        self.running.clear()
        self.thread.join(timeout=120)

    def loop(self):
        addresses = self.system.addresses
        result = os.path.join(RUN, "bench.json")
        while self.running.is_set():
            run = subprocess.run(
                [self.bench, "reads", "--rate", "20", "--duration", "20", "--warm-up", "0", "--timeout", "5",
                 "--prefix", f"chaos-bench-{uuid.uuid4().hex[:8]}-", "--json", result,
                 "--user-service", addresses["user"], "--vessel-service", addresses["vessel"],
                 "--consignment-service", addresses["consignment"]],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
            if run.returncode not in (0, 1) or not os.path.exists(result):
                self.runs_failed += 1  # its users could not be made (user-service down): the next run tries again
                time.sleep(1)
                continue
            with open(result) as answer:
                for scenario in json.load(answer):
                    for call in scenario["calls"].values():
                        self.calls += call["calls"]
                        self.errors.update(call["errors"])
            os.remove(result)


# --- the faults ----------------------------------------------------------------------------------------------

SERVICE_NAMES = ["consignment-service-1", "consignment-service-2", "vessel-service-1", "vessel-service-2",
                 "user-service", "email-service", "api-gateway"]
ALL_FAULTS = ([f"kill:{name}" for name in SERVICE_NAMES]
              + [f"stop:{name}" for name in ("consignment-service-1", "vessel-service-1", "user-service",
                                             "email-service", "api-gateway")]
              + ["restart:postgres", "restart:nats", "restart:mongo", "rolling-restart"])
SHORT_FAULTS = ["kill:consignment-service-1", "kill:vessel-service-2", "kill:email-service", "restart:nats"]


def not_serving_during(system, seconds):
    """The services whose health said NOT_SERVING at some probe within the next `seconds`."""
    seen, deadline = set(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen |= {service.name for service in system.services if not service.serving()}
        time.sleep(0.2)
    return seen


def inject(system, fault, notes):
    """Applies `fault`; returns when the fault is over (the process restarted, continued, the server back), with
    the services seen NOT_SERVING meanwhile (sampled while a server is down)."""
    action, _, target = fault.partition(":")
    if action == "kill":
        system.service(target).kill_and_restart()
    elif action == "stop":
        service = system.service(target)
        service.signal(signal.SIGSTOP)
        time.sleep(STOP_SECONDS)
        service.signal(signal.SIGCONT)
    elif action == "restart":
        system.servers("stop-server", target)
        down = not_serving_during(system, SERVER_DOWN_SECONDS)
        system.servers("start-server", target)
        return sorted(down)
    elif action == "rolling-restart":
        for service in system.services:
            code = service.terminate_and_restart()
            if code != 0:
                notes.append(f"{service.name} exited {code} on SIGTERM (expected 0)")
            wait_for(service.serving, RECOVERY_BOUND, f"{service.name} SERVING after its restart")
    else:
        raise SystemExit(f"chaos: unknown fault {fault}; the faults are: {', '.join(ALL_FAULTS)}")
    return []


# --- the invariants ------------------------------------------------------------------------------------------

def mongo_database(system):
    import pymongo
    return pymongo.MongoClient(system.servers_env["SHIPPY_MONGO_URL"], serverSelectionTimeoutMS=10000)["shippy"]


def psql(system, query):
    result = subprocess.run(["psql", system.servers_env["SHIPPY_POSTGRES_URL"], "-tAc", query],
                            capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if line]


def check_bookings(system, load):
    violations = []
    database = mongo_database(system)
    wait_for(lambda: database.consignments.count_documents({"status": {"$in": ["pending", "cancelling"]}}) == 0
             and database.bookings.count_documents({"state": {"$in": ["pending", "reserved"]}}) == 0
             and database.bookings.count_documents({"freed": False, "state": {"$in": ["released", "cancelled"]}}) == 0,
             120, "every pending booking and begun cancel settled, every reservation swept, every release finished")
    records = list(database.consignments.find({}))
    booked = [r for r in records if r.get("status") == "booked"]
    for vessel in database.vessels.find({}):
        on_it = [r for r in booked if r.get("vessel_id") == vessel["_id"]]
        containers = sum(len(r.get("containers", [])) for r in on_it)
        weight = sum(r.get("weight", 0) for r in on_it)
        taken = (vessel["capacity"] - vessel["room_capacity"], vessel["max_weight"] - vessel["room_weight"])
        if taken != (containers, weight):
            violations.append(f"vessel {vessel['_id']}: room taken {taken[0]} containers {taken[1]} kg, its booked "
                              f"consignments hold {containers} containers {weight} kg")
    stored = {r["_id"]: r for r in records if r.get("status") in ("booked", "cancelled")}
    for key, ids in load.booked.items():
        if len(ids) > 1:
            violations.append(f"idempotency key {key} was answered with {len(ids)} consignments: {sorted(ids)}")
    for consignment_id, (email, answer) in load.booked_owner.items():
        record = stored.get(consignment_id)
        if record is None:
            violations.append(f"consignment {consignment_id} of {email} was answered 201 but is not stored booked")
        elif consignment_id in load.cancelled and record.get("status") != "cancelled":
            violations.append(f"consignment {consignment_id} was answered cancelled but is stored {record.get('status')}")
        elif consignment_id not in load.cancel_asked and record.get("status") != "booked":
            violations.append(f"consignment {consignment_id} was never cancelled but is stored {record.get('status')}")
        elif record.get("vessel_id") != answer.get("vessel_id"):
            violations.append(f"consignment {consignment_id} is on {record.get('vessel_id')}, answered "
                              f"{answer.get('vessel_id')}")
    # Listed for its owner: each owner's list holds every consignment answered to them.
    tokens = dict(load.tokens)
    by_owner = collections.defaultdict(set)
    for consignment_id, (email, _) in load.booked_owner.items():
        by_owner[email].add(consignment_id)
    for email, ids in sorted(by_owner.items()):
        listed, page = set(), ""
        for _ in range(1000):
            status, answer = http_call("GET", system.gateway, f"/v1/consignments?page_size=100&page_token={page}",
                                       token=tokens[email])
            if status != 200:
                violations.append(f"listing {email}'s consignments answered {status}")
                break
            listed |= {item["id"] for item in answer.get("consignments", [])}
            page = answer.get("next_page_token", "")
            if not page:
                break
        if not ids <= listed:
            violations.append(f"{email}: {len(ids - listed)} consignment(s) answered 201 are not listed")
    return violations, {"booked": len(booked), "records": len(records), "answered 201": len(load.booked_owner),
                        "cancels answered": len(load.cancelled)}


def check_users(system, load):
    violations = []
    emails = set(psql(system, "SELECT lower(email) FROM users"))
    for email in load.signed_up:
        if email.lower() not in emails:
            violations.append(f"sign-up of {email} was answered 201 but the user is not stored")
    for line in psql(system, "SELECT lower(email), count(*) FROM users GROUP BY 1 HAVING count(*) > 1"):
        violations.append(f"duplicate email: {line}")
    for email, password in sorted(load.signed_up.items()):
        status, _ = http_call("POST", system.gateway, "/v1/sessions", {"email": email, "password": password})
        if status != 200:
            violations.append(f"{email} cannot log in after the campaign: {status}")
    return violations, {"users stored": len(emails), "sign-ups answered 201": len(load.signed_up)}


def mail_headers(system):
    """The header lines of each mail written (.eml files, CRLF-separated)."""
    for name in os.listdir(system.mail) if os.path.isdir(system.mail) else []:
        if name.endswith(".eml"):
            with open(os.path.join(system.mail, name), encoding="utf-8", newline="") as mail:
                yield mail.read().split("\r\n\r\n")[0].split("\r\n")


def mails_by_recipient(system):
    """The welcome mails written, counted by recipient (consignments' mails go to the same people)."""
    found = collections.Counter()
    for headers in mail_headers(system):
        recipient = next((line for line in headers if line.startswith("To: ")), "")
        if any(line.startswith("Subject: Welcome to Shippy") for line in headers):
            found[recipient.split("<")[-1].split(">")[0].lower()] += 1
    return found


def check_mails(system):
    emails = set(psql(system, "SELECT lower(email) FROM users"))
    # Every event published and consumed: the outbox empty, then each user's mail written.
    wait_for(lambda: psql(system, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0] == "0", 120,
             "the outbox published")
    try:
        wait_for(lambda: set(mails_by_recipient(system)) >= emails, 120, "every welcome mail written")
    except SystemExit:
        pass
    mails = mails_by_recipient(system)
    log = open(system.service("email-service").log, encoding="utf-8", errors="replace").read()
    written = collections.Counter(line.split("recipient=")[1].split()[0].lower()
                                  for line in log.splitlines() if "welcome mail written" in line and "recipient=" in line)
    violations = [f"{email}: {mails.get(email, 0)} welcome mail file(s)" for email in sorted(emails)
                  if mails.get(email, 0) != 1]
    violations += [f"{email}: the welcome mail was written {count} times" for email, count in written.items()
                   if count > 1]
    return violations, {"users": len(emails), "mails": sum(mails.values())}


def check_consignment_mails(system):
    """Every consignment's events published from its record and mailed once: one booking confirmation for each
    consignment stored booked or cancelled, one cancellation notice for each cancelled, whichever process died
    between a change and its publication (a second event for one change would be a second file: mails are named
    by event id)."""
    database = mongo_database(system)
    wait_for(lambda: database.consignments.count_documents({"outbox_at": {"$gt": 0}}) == 0, 120,
             "every consignment event published")
    records = list(database.consignments.find({"status": {"$in": ["booked", "cancelled"]}}, {"status": 1}))
    expected = collections.Counter()
    for record in records:
        expected[(record["_id"], "booked")] = 1
        if record["status"] == "cancelled":
            expected[(record["_id"], "cancelled")] = 1

    def found():
        mails = collections.Counter()
        for headers in mail_headers(system):
            subject = next((line for line in headers if line.startswith("Subject: Consignment ")), None)
            if subject:
                words = subject.split()
                mails[(words[2], "cancelled" if words[4].startswith("cancelled") else "booked")] += 1
        return mails

    try:
        wait_for(lambda: set(found()) >= set(expected), 120, "every booking and cancel mailed")
    except SystemExit:
        pass
    mails = found()
    violations = [f"consignment {id}: {mails.get((id, kind), 0)} {kind} mail(s), not 1"
                  for (id, kind) in sorted(set(expected) | set(mails)) if mails.get((id, kind), 0) != expected[(id, kind)]]
    return violations, {"consignments booked": len(records),
                        "cancelled": sum(1 for r in records if r["status"] == "cancelled"),
                        "their mails": sum(mails.values())}


# --- the campaign --------------------------------------------------------------------------------------------

def run_campaign(system, load, faults, pause):
    timeline = []  # (fault, start, end, recovered or None, notes)
    time.sleep(pause)
    for fault in faults:
        notes = []
        start = time.monotonic()
        say(f"   {time.strftime('%H:%M:%S')} {fault}")
        down = inject(system, fault, notes)
        end = time.monotonic()
        recovered = None
        while time.monotonic() - end < RECOVERY_BOUND:
            if system.all_serving():
                recovered = time.monotonic()
                break
            time.sleep(0.2)
        say(f"      recovered in {recovered - end:.1f} s" if recovered else "      NOT recovered within the bound")
        timeline.append((fault, start, end, recovered, notes, down))
        time.sleep(pause)
    return timeline


def harm(load, timeline, begin, finish):
    """Per fault: the calls answered in its window (its start to every service SERVING again, plus the grace),
    those that failed by status, and the slowest; then the failures answered after that grace and before the
    next fault (or the end of the load), and those before the first fault. A call counts when it was answered:
    one in flight when a fault struck is that fault's harm."""
    answered = [(c[0] + c[3], c) for c in load.calls]
    failing = lambda c: c[2] >= 500 or c[2] == 0
    rows, late = [], []
    bounds = [t[1] for t in timeline[1:]] + [float("inf")]
    for (fault, start, end, recovered, _, _), next_start in zip(timeline, bounds):
        window_end = (recovered or end) + GRACE_AFTER_RECOVERY
        inside = [c for moment, c in answered if start <= moment < window_end]
        failed = collections.Counter(c[2] for c in inside if failing(c))
        rows.append((fault, len(inside), failed, max((c[3] for c in inside), default=0)))
        late += [(fault, c) for moment, c in answered if window_end <= moment < next_start and failing(c)]
    first_fault = timeline[0][1] if timeline else finish
    quiet = [c for moment, c in answered if begin <= moment < first_fault and failing(c)]
    return rows, late, quiet


def timeline_svg(load, timeline, begin, finish, path):
    seconds = max(1, int(finish - begin))  # whole seconds only: the last one is cut short
    ok, failed = [0] * seconds, [0] * seconds
    for started, _, status, took, _ in load.calls:
        index = int(started + took - begin)  # when it was answered
        if 0 <= index < seconds:
            (failed if status >= 500 or status == 0 else ok)[index] += 1
    width, height, left, top, bottom = 1000, 320, 50, 30, 40
    plot_h = height - top - bottom
    peak = max(max(ok), max(failed), 1)
    x = lambda s: left + (width - left - 10) * s / seconds
    y = lambda v: top + plot_h - plot_h * v / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>']
    for fault, start, end, recovered, _, _ in timeline:
        x0, x1 = x(start - begin), x((recovered or end) - begin)
        parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="{plot_h}" '
                     f'fill="#f4c542" opacity="0.35"/>')
        parts.append(f'<text transform="translate({x0 + 3:.1f},{top + 4}) rotate(90)" fill="#7a5c00">{fault}</text>')
    for series, colour in ((ok, "#2b7bb9"), (failed, "#d62728")):
        points = " ".join(f"{x(i + 0.5):.1f},{y(v):.1f}" for i, v in enumerate(series))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<text x="{left - 5}" y="{top + 4}" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{left - 5}" y="{top + plot_h}" text-anchor="end">0</text>')
    for tick in range(0, seconds, 60):
        parts.append(f'<text x="{x(tick):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{tick // 60} min</text>')
    parts.append(f'<text x="{left}" y="18" fill="#2b7bb9">calls answered per second</text>'
                 f'<text x="{left + 180}" y="18" fill="#d62728">failed per second (5xx or no answer)</text>'
                 f'<text x="{left + 420}" y="18" fill="#7a5c00">fault, to every service SERVING again</text>')
    parts.append("</svg>")
    with open(path, "w") as svg:
        svg.write("\n".join(parts) + "\n")


def report(args, seed, faults, timeline, rows, late, quiet, checks, notes, duration, path, picture, bench):
    held = all(not v for v, _ in checks.values()) and not late and not quiet and not notes \
        and all(t[3] is not None for t in timeline)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = [
        "# Chaos campaign", "",
        f"`make chaos` on {commit}: {len(faults)} faults, seed {seed} (`make chaos SEED={seed}` replays the order), "
        f"{args.build} build, {duration:.0f} s in all. **Every invariant {'held' if held else 'did NOT hold'}.**",
        "", f"![calls and failures per second, faults marked]({os.path.basename(picture)})", "",
        "## Faults", "",
        "| fault | calls in its window | failed (status: count) | slowest answer | NOT_SERVING seen | back to "
        "SERVING after |",
        "|---|---|---|---|---|---|",
    ]
    for (fault, start, end, recovered, _, down), (_, calls, failed, slowest) in zip(timeline, rows):
        failures = ", ".join(f"{'no answer' if code == 0 else code}: {count}" for code, count in sorted(failed.items()))
        back = f"{recovered - end:.1f} s" if recovered else f"not within {RECOVERY_BOUND} s"
        lines.append(f"| {fault} | {calls} | {failures or 'none'} | {slowest:.1f} s | {', '.join(down) or '-'} "
                     f"| {back} |")
    lines += ["", "A fault's window runs from its start to every service SERVING again, plus "
              f"{GRACE_AFTER_RECOVERY} s. A killed process is started again a second later (as an orchestrator "
              f"would); a stopped one is continued after {STOP_SECONDS} s, past the gateway's {GATEWAY_TIMEOUT} s "
              f"deadline; a server is started again after {SERVER_DOWN_SECONDS} s down, during which "
              "the services' health is sampled (NOT_SERVING seen: readiness took them out of rotation).", "",
              f"Beside the gateway's load, `shippy-bench reads` called the services over gRPC (20 calls/s, 5 s "
              f"deadlines): {bench.calls} calls, failed: "
              + (", ".join(f"{code}: {count}" for code, count in sorted(bench.errors.items())) or "none")
              + (f"; {bench.runs_failed} of its 20 s runs could not start (user-service down)"
                 if bench.runs_failed else "") + ".", "", "## Invariants", ""]
    for name, (violations, figures) in checks.items():
        summary = ", ".join(f"{key}: {value}" for key, value in figures.items())
        lines.append(f"- **{name}** ({summary}): " + ("held." if not violations else f"{len(violations)} broken:"))
        lines += [f"  - {v}" for v in violations[:20]]
    lines.append(f"- **recovery**: every service SERVING again within {RECOVERY_BOUND} s of each fault's end, "
                 "and every process up at the end: " + ("held." if not notes and all(t[3] for t in timeline)
                                                         else "broken:"))
    lines += [f"  - {n}" for n in notes]
    lines.append(f"- **bounded harm**: no call failed before the first fault or more than {GRACE_AFTER_RECOVERY} s "
                 "after a recovery: " + ("held." if not late and not quiet else
                                         f"{len(late) + len(quiet)} such failure(s):"))
    lines += [f"  - after {fault}: {kind} answered {status or 'nothing'} {detail!r}"
              for fault, (_, kind, status, _, detail) in late[:20]]
    lines += [f"  - before any fault: {kind} answered {status or 'nothing'} {detail!r}"
              for _, kind, status, _, detail in quiet[:20]]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    return held


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", default="", help="comma-separated faults (default: all of them)")
    parser.add_argument("--short", action="store_true", help="a few faults, about a minute (make test)")
    parser.add_argument("--build", default="release", choices=["release", "debug"])
    parser.add_argument("--report", default=os.path.join(ROOT, "CHAOS.md"))
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    faults = [f for f in args.faults.split(",") if f] or (SHORT_FAULTS if args.short else ALL_FAULTS)
    unknown = [f for f in faults if f not in ALL_FAULTS]
    if unknown:
        raise SystemExit(f"chaos: unknown fault(s) {', '.join(unknown)}; the faults are: {', '.join(ALL_FAULTS)}")
    random.Random(seed).shuffle(faults)
    say(f"== chaos: seed {seed}, {len(faults)} faults: {', '.join(faults)}")
    bin_dir = subprocess.run(["swift", "build", "-c", args.build, "--show-bin-path"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    subprocess.run(["rm", "-rf", RUN], check=True)
    system = System(bin_dir)
    began = time.monotonic()
    try:
        say("== Starting the system under .local/chaos")
        system.start()
        status, _ = http_call("POST", system.gateway, "/v1/users",
                              {"name": "Chaos Admin", "email": ADMIN, "password": PASSWORD})
        users = system.service("user-service")  # the operator's command makes the admin
        subprocess.run([users.binary, "grant-admin", ADMIN], env={**os.environ, **users.environment}, check=True,
                       capture_output=True)
        status, session = http_call("POST", system.gateway, "/v1/sessions", {"email": ADMIN, "password": PASSWORD})
        if status != 200:
            raise SystemExit(f"chaos: the admin could not log in ({status})")
        for index in (1, 2):  # room for every booking of the campaign
            http_call("POST", system.gateway, "/v1/vessels", {"id": f"chaos{index}", "name": f"Chaos {index}",
                      "capacity": 1_000_000, "max_weight": 2_000_000_000}, token=session["token"])
        load, bench = Load(system.gateway), BenchLoad(system, bin_dir)
        say("== Load running (the gateway's and shippy-bench's); faults follow")
        load_began = time.monotonic()
        load.start()
        bench.start()
        timeline = run_campaign(system, load, faults, pause=5 if args.short else 8)
        finish = time.monotonic()
        load.stop()
        bench.stop()
        say("== Load stopped; checking the invariants")
        notes = [note for t in timeline for note in t[4]]
        for service in system.services:
            if service.process.poll() is not None:
                notes.append(f"{service.name} exited on its own (status {service.process.returncode})")
        rows, late, quiet = harm(load, timeline, load_began, finish)
        checks = {"bookings": check_bookings(system, load), "users": check_users(system, load),
                  "welcome mails": check_mails(system), "consignment mails": check_consignment_mails(system)}
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        picture = os.path.splitext(args.report)[0] + ".svg"
        timeline_svg(load, timeline, load_began, finish, picture)
        held = report(args, seed, faults, timeline, rows, late, quiet, checks, notes,
                      time.monotonic() - began, args.report, picture, bench)
        calls = len(load.calls)
        failed = sum(1 for c in load.calls if c[2] >= 500 or c[2] == 0)
        say(f"== {calls} calls, {failed} failed; report: {args.report}")
        with open(args.report) as written:
            invariants = written.read().split("## Invariants", 1)[1]
        say(invariants.strip())
        say(f"== chaos: every invariant {'held' if held else 'did NOT hold'} (seed {seed})")
        return 0 if held else 1
    finally:
        system.stop()


if __name__ == "__main__":
    sys.exit(main())
