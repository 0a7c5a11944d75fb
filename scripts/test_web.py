#!/usr/bin/env python3
"""The web edge as people and tools meet it, part of `make test`, against the real gateway and services that
scripts/system.sh starts on free ports in a state folder of its own (a running `make up` is left alone):

1. the web app in a real browser (Debian's chromium and chromium-driver, driven by Selenium): sign up, a wrong
   password's message, log in, ship the sample consignment with the form, see it listed with its vessel, ship
   consignment.json as a file, and a consignment no vessel can take; an access token the gateway refuses, which
   the app refreshes; log out, after which its refresh token is refused; no error in the browser's console (the
   strict Content-Security-Policy holds for the app's own scripts); a screenshot of each step, and one at a phone's size, under OUTPUT
   (default .local/test-output/web);
2. schemathesis against the running gateway and its own /openapi.yaml, with a real token (an admin's): no
   5xx, and every response's status, content type, headers and body conform to the document; 90 s at most.
   Its summary is printed.

    test_web.py [OUTPUT]
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

root = pathlib.Path(__file__).resolve().parent.parent
output = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else root / ".local/test-output/web")
venv = root / ".local/venv/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(message):
    print(f"test-web: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def post(base, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def post_status(base, path, body):
    """The HTTP status of a POST, error statuses included."""
    try:
        post(base, path, body)
        return 200
    except urllib.error.HTTPError as error:
        return error.code


def browser_story(base):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    step = 0

    def shot(name):
        nonlocal step
        step += 1
        driver.save_screenshot(str(output / f"{step:02d}-{name}.png"))

    def type_into(field_id, text):
        field = driver.find_element(By.ID, field_id)
        field.clear()
        field.send_keys(text)

    def message_says(text):
        try:
            WebDriverWait(driver, 20).until(expected_conditions.text_to_be_present_in_element((By.ID, "message"), text))
        except Exception:
            fail(f"the page does not say {text!r}; it says {driver.find_element(By.ID, 'message').text!r}")

    try:
        email = f"browser-{os.getpid()}@example.com"
        password = "correct horse battery"
        driver.get(base + "/")
        shot("start")
        type_into("signup-name", "Ewan Valentine")
        type_into("signup-email", email)
        type_into("signup-company", "BBC")
        type_into("signup-password", password)
        driver.find_element(By.CSS_SELECTOR, "#signup-form button[type=submit]").click()
        message_says("your account is ready")
        shot("signed-up")

        type_into("login-email", email)
        type_into("login-password", "not my password")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        message_says("wrong email or password")
        shot("wrong-password")

        type_into("login-password", password)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        message_says("Logged in as Ewan Valentine")
        shot("logged-in")

        # The sample consignment (consignment.json), typed into the form: three container rows.
        sample = json.loads((root / "consignment.json").read_text())
        type_into("ship-description", sample["description"])
        type_into("ship-weight", str(sample["weight"]))
        for _ in sample["containers"][1:]:
            driver.find_element(By.ID, "add-container").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#containers .container-row")
        for row, container in zip(rows, sample["containers"]):
            row.find_element(By.NAME, "customer_id").send_keys(container["customer_id"])
            row.find_element(By.NAME, "origin").send_keys(container["origin"])
        driver.find_element(By.CSS_SELECTOR, "#ship-form button[type=submit]").click()
        message_says("on vessel vessel003")
        listed = driver.find_element(By.ID, "consignment-rows").text
        if sample["description"] not in listed or "vessel003" not in listed:
            fail(f"the consignment is not listed with its vessel: {listed!r}")
        fleet = driver.find_element(By.ID, "vessel-rows").text
        if "9 of 12" not in fleet:
            fail(f"the fleet does not show vessel003's room taken: {fleet!r}")
        driver.execute_script("document.getElementById('consignments').scrollIntoView()")
        shot("shipped")

        # The same file, as the original's users have it: consignment.json, chosen in the file field.
        driver.execute_script("document.getElementById('message').textContent = ''")
        driver.find_element(By.ID, "ship-file").send_keys(str(root / "consignment.json"))
        driver.find_element(By.CSS_SELECTOR, "#file-form button[type=submit]").click()
        message_says("Shipped")
        try:
            WebDriverWait(driver, 20).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#consignment-rows tr")) == 2)
        except Exception:
            fail(f"after shipping the file the list is not two consignments: "
                 f"{driver.find_element(By.ID, 'consignment-rows').text!r}")
        shot("shipped-file")

        type_into("ship-description", "Too heavy for any vessel")
        type_into("ship-weight", "2000000000")
        rows = driver.find_elements(By.CSS_SELECTOR, "#containers .container-row")
        rows[0].find_element(By.NAME, "customer_id").send_keys("cust009")
        rows[0].find_element(By.NAME, "origin").send_keys("Leeds, United Kingdom")
        driver.find_element(By.CSS_SELECTOR, "#ship-form button[type=submit]").click()
        message_says("no vessel has room")
        shot("no-vessel")

        # An access token that no longer counts (as one past its 15 minutes): the app refreshes and goes on.
        refresh_before = driver.execute_script("return sessionStorage.getItem('shippy.refresh')")
        driver.execute_script("sessionStorage.setItem('shippy.token', 'expired.or.revoked')")
        driver.find_element(By.ID, "fleet-refresh").click()
        try:
            WebDriverWait(driver, 20).until(
                lambda d: d.execute_script("return sessionStorage.getItem('shippy.token')") != "expired.or.revoked")
        except Exception:
            fail("the app did not refresh a token the gateway refused")
        if driver.execute_script("return sessionStorage.getItem('shippy.refresh')") == refresh_before:
            fail("the refresh token was not rotated")
        refresh_after = driver.execute_script("return sessionStorage.getItem('shippy.refresh')")

        driver.set_window_size(390, 844)
        shot("phone")
        driver.set_window_size(1280, 1000)
        # Logging out revokes the login on the server: its refresh token no longer gets a token.
        driver.find_element(By.ID, "logout").click()
        message_says("Logged out.")
        status = post_status(base, "/v1/sessions/refresh", {"refresh_token": refresh_after})
        if status != 401:
            fail(f"after logging out, its refresh token still answers {status}, not 401")
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                  and "/v1/" not in entry["message"]]
        if errors:
            fail(f"the browser's console has errors: {errors}")
        print(f"test-web: browser: signed up, a wrong password refused, logged in, shipped the sample on vessel003 "
              f"(the form) and again (the file), "
              f"a consignment no vessel can take refused, a refused token refreshed, logged out for real, "
              f"no console errors; {step} screenshots in {output}")
    finally:
        driver.quit()


ADMIN = f"schemathesis-{os.getpid()}@example.com"


def schemathesis(base, system, env):
    admin = ADMIN
    post(base, "/v1/users", {"name": "Schemathesis", "email": admin, "password": "correct horse battery"})
    # The operator's command makes it an admin, so that it may add vessels.
    subprocess.run([system, "grant-admin", admin], env=env, check=True, capture_output=True)
    token = post(base, "/v1/sessions", {"email": admin, "password": "correct horse battery"})["token"]
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
              "response_schema_conformance")
    run = subprocess.run(
        [str(venv / "schemathesis"), "run", str(root / "Services/api-gateway/openapi.yaml"), "--url", base,
         "--header", f"Authorization: Bearer {token}", "--checks", checks, "--max-examples", "25", "--seed", "1",
         "--request-timeout", "20", "--max-time", "90"],
        capture_output=True, text=True, cwd=output)
    (output / "schemathesis.log").write_text(run.stdout + run.stderr)
    summary = [line for line in run.stdout.splitlines() if line.strip()][-3:]
    print("test-web: schemathesis: " + " | ".join(line.strip(" =") for line in summary))
    if run.returncode != 0:
        fail(f"schemathesis found problems (exit {run.returncode}); see {output / 'schemathesis.log'}:\n"
             + run.stdout[-4000:])


def main():
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("*.png"):
        old.unlink()
    run = tempfile.mkdtemp(prefix="test-web.", dir=root / ".local")
    system = str(root / "scripts/system.sh")

    def environment():
        return dict(os.environ, SHIPPY_RUN_DIR=run, SHIPPY_SERVERS_DIR=os.path.join(run, "servers"),
                    SHIPPY_GATEWAY_PORT=str(free_port()), SHIPPY_PROMETHEUS_PORT="0", BCRYPT_COST="4",
                    # schemathesis signs up and logs in past the per-address limit (the limit itself is
                    # GatewayTests').
                    RATE_LIMIT_AUTH="1000000",
                    **{f"SHIPPY_{name}_PORT": str(free_port()) for name in ("CONSIGNMENT", "VESSEL", "USER", "EMAIL")},
                    **{f"SHIPPY_{name}_METRICS_PORT": str(free_port())
                       for name in ("CONSIGNMENT", "VESSEL", "USER", "EMAIL", "GATEWAY")})

    env = environment()
    try:
        # A port found free here may be taken by the time a service binds it (the servers pick theirs in between):
        # then the system is started again on other ports, up to three times.
        for attempt in range(3):
            started = subprocess.run([system, "start"], env=env, capture_output=True, text=True)
            if started.returncode == 0:
                break
            output_text = started.stdout + started.stderr
            if "Address already in use" not in output_text or attempt == 2:
                fail(f"the system did not start:\n{started.stdout[-2000:]}{started.stderr[-2000:]}")
            print("test-web: a port was taken meanwhile; starting again on other ports", file=sys.stderr)
            subprocess.run([system, "stop"], env=env, capture_output=True)
            subprocess.run([str(root / "scripts/servers.sh"), "purge"], env=env, capture_output=True)
            env = environment()
        gateway = env["SHIPPY_GATEWAY_PORT"]
        base = f"http://127.0.0.1:{gateway}"
        browser_story(base)
        schemathesis(base, system, env)
    finally:
        subprocess.run([system, "stop"], env=env, capture_output=True)
        subprocess.run([str(root / "scripts/servers.sh"), "purge"], env=env, capture_output=True)
        subprocess.run(["rm", "-rf", run])


if __name__ == "__main__":
    main()
