"""The web edge as people and tools meet it, against the real gateway and services started natively (the gateway
over HTTPS with its own identity, as `make start` serves it; every client verifies it):

1. the web app in a real browser (Debian's chromium and chromium-driver, driven by Selenium): sign up, a wrong
   password's message, log in, ship the sample consignment with the form, see it listed with its vessel, ship
   consignment.json as a file, and a consignment no vessel can take; an access token the gateway refuses, which
   the app refreshes; a second tab of the same user that shows the booking and the cancel made in the first as they
   happen, without a reload (the gateway's live stream); log out, after which its refresh token is refused; no error
   in the browser's console (the strict Content-Security-Policy holds for the app's own scripts); a screenshot of
   each step, and one at a phone's size, under .local/test-output/web;
2. schemathesis against the running gateway and its own document, with a real token (an admin's), with every
   check it has and every phase (examples, coverage, fuzzing, and the stateful chains the document's links
   declare: sign up, log in, refresh, log out; ship, list): no 5xx, every answer conforms to the document, what
   the document allows is accepted and what it does not is refused, undeclared methods answer 405. A fixed number
   of cases per operation (40) with a fixed seed, so what it covers does not depend on the machine's speed; its
   summary is printed and its log kept beside the screenshots.
"""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from support import OUTPUT, ROOT, VENV_BIN

output = OUTPUT / "web"


@pytest.fixture(scope="module", autouse=True)
def clean_output():
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("*.png"):
        old.unlink()


def post(system, path, body, token=None):
    """A POST to the system's gateway over HTTPS, verified against the system's authority."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(system.gateway + path, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30, context=system.tls()) as response:
        return json.load(response)


def post_status(system, path, body):
    """The HTTP status of a POST, error statuses included."""
    try:
        post(system, path, body)
        return 200
    except urllib.error.HTTPError as error:
        return error.code


def public_key_pin(certificate):
    """The base64 SHA-256 of a certificate's public key (SPKI), the form Chromium's
    --ignore-certificate-errors-spki-list takes."""
    key = subprocess.run(["openssl", "x509", "-in", certificate, "-pubkey", "-noout"], capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key, capture_output=True,
                         check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_the_web_app_in_a_browser(running_system):
    base = running_system.gateway
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    # The browser trusts the gateway's own key and no other certificate: the development authority is not in its
    # store (chromedriver's fresh profile), as it is not in a new user's.
    gateway_key = public_key_pin(os.path.join(running_system.state, "tls", "api-gateway.pem"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     f"--ignore-certificate-errors-spki-list={gateway_key}"):
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

    # Read in one script, as the app may replace the rows between two WebDriver calls.
    def vessel_row(vessel_id):
        """The booked figures of a vessel's row in the fleet: containers, then kg ("3 / 12")."""
        return driver.execute_script(
            "return [...document.querySelectorAll(`#vessel-rows tr[data-id='${arguments[0]}'] td span`)]"
            ".map((figures) => figures.textContent)", vessel_id)

    def first_consignment():
        """The first row of the consignments: its cells' texts, and whether it offers Cancel."""
        return driver.execute_script(
            "const row = document.querySelector('#consignment-rows tr');"
            "return {cells: [...row.cells].map((cell) => cell.textContent),"
            " cancellable: Boolean(row.querySelector('button.cancel'))}")

    def first_status():
        """The status of the first consignment listed, or None while none is."""
        cells = first_consignment()["cells"]
        return cells[4] if len(cells) > 4 else None

    def cancel_first():
        driver.execute_script("document.querySelector('#consignment-rows tr button.cancel').click()")

    def message_says(text):
        try:
            WebDriverWait(driver, 20).until(expected_conditions.text_to_be_present_in_element((By.ID, "message"), text))
        except Exception:
            raise AssertionError(
                f"the page does not say {text!r}; it says {driver.find_element(By.ID, 'message').text!r}")

    try:
        email = f"browser-{os.getpid()}@example.com"
        password = "correct horse battery"
        driver.get(base + "/")
        shot("start")
        if not driver.find_elements(By.ID, "signup-form"):
            raise AssertionError(f"the browser did not show the app at {base} (its certificate refused?): "
                                 f"{driver.title!r}")
        type_into("signup-name", "Ewan Valentine")
        type_into("signup-email", email)
        type_into("signup-company", "BBC")
        type_into("signup-password", password)
        driver.find_element(By.CSS_SELECTOR, "#signup-form button[type=submit]").click()
        message_says("your account is ready")
        shot("signed-up")

        # The operator makes this user an admin (as `make start`'s `shippy user-service grant-admin` does), so that the
        # app shows it the form that adds a vessel.
        running_system.system("grant-admin", email)

        type_into("login-email", email)
        type_into("login-password", "not my password")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        message_says("wrong email or password")
        shot("wrong-password")

        type_into("login-password", password)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        message_says("Logged in as Ewan Valentine")
        shot("logged-in")

        # A second tab of the same user, logged in there too (each tab keeps its own session): it follows what the
        # first tab does, live, without being reloaded (a mark set on its page stays).
        first_tab = driver.current_window_handle
        driver.switch_to.new_window("tab")
        second_tab = driver.current_window_handle
        driver.get(base + "/")
        type_into("login-email", email)
        type_into("login-password", password)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        message_says("Logged in as Ewan Valentine")
        try:
            WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "live").text.startswith("Live:"))
        except Exception:
            raise AssertionError(f"the second tab is not live: {driver.find_element(By.ID, 'live').text!r}")
        driver.execute_script("window.shippyNotReloaded = true")
        driver.switch_to.window(first_tab)

        def in_second_tab(condition, what):
            driver.switch_to.window(second_tab)
            try:
                WebDriverWait(driver, 20).until(
                    lambda d: d.execute_script("return window.shippyNotReloaded === true") and condition())
            except Exception:
                raise AssertionError(f"the second tab does not show {what} without a reload: "
                                     f"{driver.find_element(By.ID, 'consignment-rows').text!r}, "
                                     f"live: {driver.find_element(By.ID, 'live').text!r}")
            driver.execute_script("document.getElementById('consignments').scrollIntoView()")
            shot(f"second-tab-{what.replace(' ', '-')}")
            driver.switch_to.window(first_tab)

        # The sample consignment (consignment.json), typed into the form: three container rows.
        sample = json.loads((ROOT / "consignment.json").read_text())
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
            raise AssertionError(f"the consignment is not listed with its vessel: {listed!r}")
        if vessel_row("vessel003") != ["3 / 12", "55,000 / 80,000"]:
            raise AssertionError(f"the fleet does not show vessel003's room taken: {vessel_row('vessel003')!r}")
        driver.execute_script("document.getElementById('consignments').scrollIntoView()")
        shot("shipped")
        in_second_tab(lambda: first_status() == "booked"
                      and vessel_row("vessel003") == ["3 / 12", "55,000 / 80,000"], "the booking")

        # The same file, as the original's users have it: consignment.json, chosen in the file field.
        driver.execute_script("document.getElementById('message').textContent = ''")
        driver.find_element(By.ID, "ship-file").send_keys(str(ROOT / "consignment.json"))
        driver.find_element(By.CSS_SELECTOR, "#file-form button[type=submit]").click()
        message_says("Shipped")
        try:
            WebDriverWait(driver, 20).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#consignment-rows tr")) == 2)
        except Exception:
            raise AssertionError(f"after shipping the file the list is not two consignments: "
                 f"{driver.find_element(By.ID, 'consignment-rows').text!r}")
        shot("shipped-file")

        type_into("ship-description", "Heavier than a container can be")
        type_into("ship-weight", "49000000")
        rows = driver.find_elements(By.CSS_SELECTOR, "#containers .container-row")
        rows[0].find_element(By.NAME, "customer_id").send_keys("cust009")
        rows[0].find_element(By.NAME, "origin").send_keys("Leeds, United Kingdom")
        driver.find_element(By.CSS_SELECTOR, "#ship-form button[type=submit]").click()
        message_says("weight must be at most 30480 kg per container")
        shot("too-heavy")

        # Cancel the first consignment: the app asks first, and "Keep it" changes nothing.
        def dialog_open():
            return driver.execute_script("return document.getElementById('cancel-dialog').open")

        cancel_first()
        WebDriverWait(driver, 10).until(lambda d: dialog_open())
        shot("cancel-asked")
        driver.find_element(By.ID, "cancel-keep").click()
        WebDriverWait(driver, 10).until(lambda d: not dialog_open())
        if first_consignment()["cells"][4] != "booked":
            raise AssertionError(f"'Keep it' changed the consignment: {first_consignment()!r}")
        cancel_first()
        WebDriverWait(driver, 10).until(lambda d: dialog_open())
        driver.find_element(By.ID, "cancel-confirm").click()
        message_says("its room on vessel vessel003 is free again")
        try:
            WebDriverWait(driver, 20).until(lambda d: first_consignment()["cells"][4] == "cancelled"
                                            and vessel_row("vessel003") == ["0 / 12", "0 / 80,000"])
        except Exception:
            raise AssertionError(f"after the cancel: {first_consignment()!r}, vessel003 {vessel_row('vessel003')!r}")
        if first_consignment()["cancellable"]:
            raise AssertionError("a cancelled consignment still offers Cancel")
        driver.execute_script("document.getElementById('consignments').scrollIntoView()")
        shot("cancelled")
        in_second_tab(lambda: first_status() == "cancelled" and not first_consignment()["cancellable"]
                      and vessel_row("vessel003") == ["0 / 12", "0 / 80,000"], "the cancel")

        # An admin adds a vessel: listed at once, nothing booked on it.
        type_into("vessel-name", "Browser Trader")
        type_into("vessel-capacity", "5")
        type_into("vessel-max-weight", "100000")
        driver.find_element(By.CSS_SELECTOR, "#vessel-form button[type=submit]").click()
        message_says("Added vessel Browser Trader")

        def added():
            return driver.execute_script(
                "return [...document.querySelectorAll('#vessel-rows tr')].map((row) => row.textContent)"
                ".filter((text) => text.includes('Browser Trader'))")

        try:
            WebDriverWait(driver, 20).until(lambda d: len(added()) == 1 and "0 / 5" in added()[0])
        except Exception:
            raise AssertionError(f"the new vessel is not listed once, empty: {added()!r}")
        driver.execute_script("document.getElementById('fleet').scrollIntoView()")
        shot("vessel-added")

        # An access token that no longer counts (as one past its 15 minutes): the app refreshes and goes on.
        refresh_before = driver.execute_script("return sessionStorage.getItem('shippy.refresh')")
        driver.execute_script("sessionStorage.setItem('shippy.token', 'expired.or.revoked')")
        driver.find_element(By.ID, "fleet-refresh").click()
        try:
            WebDriverWait(driver, 20).until(
                lambda d: d.execute_script("return sessionStorage.getItem('shippy.token')") != "expired.or.revoked")
        except Exception:
            raise AssertionError("the app did not refresh a token the gateway refused")
        if driver.execute_script("return sessionStorage.getItem('shippy.refresh')") == refresh_before:
            raise AssertionError("the refresh token was not rotated")
        refresh_after = driver.execute_script("return sessionStorage.getItem('shippy.refresh')")

        driver.set_window_size(390, 844)
        shot("phone")
        driver.set_window_size(1280, 1000)
        # Logging out revokes the login on the server: its refresh token no longer gets a token.
        driver.find_element(By.ID, "logout").click()
        message_says("Logged out.")
        status = post_status(running_system, "/v1/sessions/refresh", {"refresh_token": refresh_after})
        if status != 401:
            raise AssertionError(f"after logging out, its refresh token still answers {status}, not 401")
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                  and "/v1/" not in entry["message"]]
        if errors:
            raise AssertionError(f"the browser's console has errors: {errors}")
        print(f"browser: signed up, a wrong password refused, logged in, shipped the sample on vessel003 "
              f"(the form) and again (the file), "
              f"a consignment heavier than its containers can be refused, one cancelled after a confirmation (its "
              f"room back on vessel003) and both followed live in a second tab, a vessel added by an admin, a refused "
              f"token refreshed, logged out for real, "
              f"no console errors; {step} screenshots in {output}")
    finally:
        driver.quit()


def test_schemathesis_finds_nothing_with_a_fixed_seed(running_system):
    base = running_system.gateway
    admin = f"schemathesis-{os.getpid()}@example.com"
    post(running_system, "/v1/users", {"name": "Schemathesis", "email": admin, "password": "correct horse battery"})
    # The operator's command makes it an admin, so that it may add vessels.
    running_system.system("grant-admin", admin)
    token = post(running_system, "/v1/sessions", {"email": admin, "password": "correct horse battery"})["token"]
    # The user of the document's examples, so that its log-in example logs in.
    post(running_system, "/v1/users", {"name": "Ewan Valentine", "email": "ewan@example.com", "company": "BBC",
                             "password": "correct horse battery"})
    # Every check and every phase (the document's examples, its coverage of each rule's edges, fuzzing, and the
    # stateful chains its links declare), valid and invalid data, a fixed seed and a fixed number of cases per
    # operation: what it covers does not depend on the machine's speed.
    run = subprocess.run(
        [str(VENV_BIN / "schemathesis"), "--config-file", str(ROOT / "Tests/System/schemathesis.toml"), "run",
         str(ROOT / "Services/api-gateway/openapi.yaml"), "--url", base,
         "--tls-verify", running_system.authority,
         "--header", f"Authorization: Bearer {token}", "--checks", "all", "--phases",
         "examples,coverage,fuzzing,stateful", "--mode", "all", "--max-examples", "40", "--seed", "1",
         "--continue-on-failure", "--request-timeout", "20"],
        capture_output=True, text=True, cwd=output)
    (output / "schemathesis.log").write_text(run.stdout + run.stderr)
    summary = [line for line in run.stdout.splitlines() if line.strip()][-3:]
    print("schemathesis: " + " | ".join(line.strip(" =") for line in summary))
    assert run.returncode == 0, (f"schemathesis found problems (exit {run.returncode}); see "
                                 f"{output / 'schemathesis.log'}:\n" + run.stdout[-4000:])


def log_in_from(system, source, email, password, forwarded_for=None):
    """POST /v1/sessions from the loopback address `source` (127.0.0.x are all this machine: distinct clients)."""
    port = int(system.gateway.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, source_address=(source, 0),
                                             context=system.tls())
    headers = {"Content-Type": "application/json"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    try:
        connection.request("POST", "/v1/sessions", json.dumps({"email": email, "password": password}), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_each_client_is_itself_a_guesser_never_delays_the_owner(running_system):
    """user-service throttles failed logins per email and client address, and behind the gateway the client is
    the one the gateway served (user-service trusts the gateway's word, TRUSTED_GATEWAYS=127.0.0.1 as `make start`
    sets it), or behind a trusted proxy (TRUSTED_PROXIES=127.0.0.1 here) the one its X-Forwarded-For names."""
    email, password = f"owner-{os.getpid()}@example.com", "correct horse battery"
    post(running_system, "/v1/users", {"name": "Owner", "email": email, "password": password})

    def guess_until_throttled(source, forwarded_for=None):
        for attempt in range(1, 13):
            status, problem = log_in_from(running_system, source, email, "a wrong guess", forwarded_for)
            if status == 429:
                return attempt, problem["detail"]
            assert status == 401, (status, problem)
        raise AssertionError(f"{source} ({forwarded_for}) was never throttled")

    # A guesser at 127.0.0.12, even one claiming to be the owner's address (it is no trusted proxy), is throttled
    # as itself; the owner at 127.0.0.14 logs in at once.
    attempts, detail = guess_until_throttled("127.0.0.12", forwarded_for="127.0.0.14")
    status, session = log_in_from(running_system, "127.0.0.14", email, password)
    assert status == 200 and session.get("token"), (status, session)
    # Behind the trusted proxy (127.0.0.1), the client is the address it forwards: one client's guesses do not
    # delay another's login through the same proxy.
    guess_until_throttled("127.0.0.1", forwarded_for="198.51.100.7")
    status, session = log_in_from(running_system, "127.0.0.1", email, password, forwarded_for="198.51.100.8")
    assert status == 200 and session.get("token"), (status, session)
    print(f"a guesser throttled after {attempts} tries ({detail}); the owner logged in from another address, and "
          "through the trusted proxy as another client")
