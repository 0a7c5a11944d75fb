"""What cannot run here as it runs in production (no Docker engine, no cluster), checked as far as it can be,
and the checks of the sources: the compose file, the Dockerfile against the built executables, the Kubernetes
manifests, the module dependencies, the generated gRPC code, Prometheus' configuration, shellcheck and
swift-format."""
import os
import re
import subprocess
import sys
import uuid

import yaml

from support import ROOT, SCRIPTS, bin_dir, free_port, run, wait_until

PACKAGE = (ROOT / "Package.swift").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Package.swift's `commands`: each executable's name beside the library with its code; `shippy` is all of them.
COMMANDS = sorted(re.findall(r'\("([a-z-]+)", "[A-Za-z]+"\)', PACKAGE))
PRODUCTS = COMMANDS + ["shippy"]


def linked_libraries(executable):
    """The ELF NEEDED entries of a built executable."""
    dynamic = run(["readelf", "-d", executable]).stdout
    return re.findall(r"\(NEEDED\).*\[(.*)\]", dynamic)


def test_the_compose_file_is_valid_and_waits_for_health():
    run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"])
    print(run([sys.executable, "scripts/check_compose.py", "docker-compose.yml"]).stdout)


def test_the_image_has_every_command_the_package_builds():
    copied = sorted(path.removeprefix("/out/") for line in DOCKERFILE.splitlines()
                    if line.startswith("COPY --from=build") for path in line.split() if path.startswith("/out/"))
    assert copied == ["shippy"], f"the Dockerfile copies {copied}: the image holds `shippy` alone, linked by name"
    linked = sorted(re.search(r"for command in ([a-z\s\\-]+); do ln -s shippy", DOCKERFILE).group(1).replace("\\", "")
                    .split())
    assert linked == COMMANDS, f"the Dockerfile links {linked} to shippy but Package.swift builds {COMMANDS}"
    chosen = sorted(re.findall(r'"([a-z-]+)": \w+Main', (ROOT / "Services/executables/shippy/main.swift").read_text()))
    assert chosen == COMMANDS, f"shippy runs {chosen} but Package.swift builds {COMMANDS}"


def test_the_image_installs_every_library_the_executables_link():
    declared = re.search(r"^# runtime-packages:(.*)$", DOCKERFILE, re.M).group(1).split()
    runtime_stage = DOCKERFILE[DOCKERFILE.index("\nFROM debian"):]
    installed = runtime_stage[runtime_stage.index("apt-get install"):runtime_stage.index("rm -rf")]
    for package in declared:
        assert re.search(rf"(^|\s){re.escape(package)}(\s|$)", installed), f"{package} is listed but not installed"
    for product in PRODUCTS:
        for library in linked_libraries(f"{bin_dir()}/{product}"):
            if re.match(r"libswift|libFoundation|libdispatch\.so|libBlocksRuntime\.so|ld-linux", library):
                continue  # the image links Swift's own libraries statically
            owner = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True).stdout
            assert owner, f"{product} links {library}, which no Debian package provides here"
            package = owner.splitlines()[0].split(":")[0]
            assert package in declared, f"{product} links {library} from {package}, missing in the runtime stage"


def test_the_clis_link_no_database_or_messaging_library():
    for cli in ("user-cli", "consignment-cli", "vessel-cli"):
        drivers = [lib for lib in linked_libraries(f"{bin_dir()}/{cli}") if re.match(r"lib(mongoc|bson|nats|pq)", lib)]
        assert not drivers, f"{cli} links {drivers}: the CLIs must link no database or messaging driver"


def test_every_target_imports_exactly_what_package_swift_declares():
    print(run([sys.executable, "scripts/check_dependencies.py"]).stdout)


def test_the_generated_grpc_code_matches_the_protos():
    print(run(["make", "--no-print-directory", "check-proto"]).stdout[-500:])


def test_the_prometheus_configuration_and_its_alert_rules_are_valid():
    print(run(["promtool", "check", "config", "deploy/prometheus/prometheus.yml"]).stdout)


def test_the_kubernetes_manifests_validate_and_pass_the_policy_scan():
    # The checkers live in a venv of their own (checkov pins dependencies of its own); `install.sh tests` makes it.
    print(run([str(ROOT / ".local/k8s-venv/bin/python"), "scripts/check_kubernetes.py"]).stdout)


def test_the_kubernetes_probes_pass_over_mutual_tls_with_a_secret_in_cert_managers_shape(tmp_path):
    """What a pod of vessel.yaml does, short of a cluster: vessel-service with its manifest's TLS settings, their
    folder laid out as its Secret is mounted (tls.crt, tls.key, ca.crt: the certificate scripts/certificates.sh makes
    for the Service's name and 127.0.0.1), passes each of its probes' commands; without the identity, a probe fails."""
    manifest = next(d for d in yaml.safe_load_all((ROOT / "deploy/kubernetes/vessel.yaml").read_text())
                    if d and d["kind"] == "Deployment")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    run([str(SCRIPTS / "certificates.sh"), "--folders", str(tmp_path / "secrets"), str(tmp_path / "made"),
         "vessel-service=vessel"])
    secret = tmp_path / "secrets" / "vessel-service"
    tls = {item["name"]: item["value"].replace("/tls/", f"{secret}/") for item in container["env"]
           if item["name"].startswith("TLS_")}
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "signing.pem")])
    run(["openssl", "ec", "-in", str(tmp_path / "signing.pem"), "-pubout", "-out", str(tmp_path / "public.pem")])
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "MONGOC_DISABLE_SHM": "1",
            "PORT": str(free_port()), "METRICS_PORT": "0", "MONGO_URL": os.environ["SHIPPY_MONGO_URL"],
            "MONGO_DATABASE": f"k8s_probes_{uuid.uuid4().hex[:8]}", "JWT_PUBLIC_KEY_FILE": str(tmp_path / "public.pem")}
    env = {**base, **tls}
    probes = [container[probe]["exec"]["command"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")]
    service = subprocess.Popen([f"{bin_dir()}/{container['command'][0]}"], env=env, stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "vessel-service.log", "w"))

    def probe(command, env):
        return subprocess.run([f"{bin_dir()}/{command[0]}", *command[1:]], env=env, capture_output=True, text=True)
    try:
        wait_until(lambda: probe(probes[0], env).returncode == 0, 60, "the startup probe")
        for command in probes[1:]:
            answer = probe(command, env)
            assert answer.returncode == 0, f"{command}: {answer.stdout}{answer.stderr}"
        refused = probe(probes[1], {**base, "PLAINTEXT": "true"})
        assert refused.returncode == 1, f"a probe without the identity: {refused.stdout}{refused.stderr}"
    finally:
        service.terminate()
        service.wait(30)
    print((tmp_path / "vessel-service.log").read_text()[-1500:])


def test_shellcheck_passes_on_every_shell_script():
    scripts = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "scripts").glob("*.sh")) + [".ci/run"]
    run(["shellcheck", *scripts])


def test_every_swift_source_is_formatted():
    run(["scripts/check-format.sh"])
