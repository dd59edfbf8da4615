"""Run the real mosquitto with the repository's configs (deploy/mosquitto/*.conf).

A config is *rendered* from the deployed file: only deployment-specific lines (paths, listen
address, bridge address and credentials) are replaced, everything else (auth, ACL, queue
limits, persistence, bridge topics) is exercised as shipped.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
CENTRAL_CONF = DEPLOY / "mosquitto" / "central.conf"
EDGE_CONF = DEPLOY / "mosquitto" / "edge.conf"
TLS_CONF = DEPLOY / "mosquitto" / "tls.conf"
MAKE_ACL = DEPLOY / "mosquitto" / "make_acl.py"

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def mosquitto_missing() -> str | None:
    """Why the real broker cannot run here, or None."""
    for tool in (MOSQUITTO, MOSQUITTO_PASSWD):
        if not os.access(tool, os.X_OK):
            return f"{tool} not installed (apt-get install mosquitto mosquitto-clients)"
    return None


def mosquitto_version() -> tuple[int, ...]:
    """The installed broker's version, e.g. (2, 0, 11)."""
    out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout
    m = re.search(r"mosquitto version (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read the mosquitto version from: {out[:200]!r}")
    return tuple(int(x) for x in m.groups())


# mosquitto 2.0.12 "Fix $share subscriptions not being recovered for durable clients that
# reconnect" (upstream ChangeLog). Before it, a restart forgets the readers' shared subscriptions
# until they subscribe again.
SHARED_SUBS_SURVIVE_RESTART = (2, 0, 12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(conf: str, replace: Mapping[str, str | None]) -> str:
    """Replace the value of every line whose option is a key of ``replace`` (None drops it).

    An option missing from ``conf`` is an error: a rename in the deployed file must not make a
    test silently run with a different configuration."""
    out, seen = [], set()
    for line in conf.splitlines():
        key = line.split(None, 1)[0] if line.strip() and not line.lstrip().startswith("#") else None
        if key in replace:
            seen.add(key)
            if replace[key] is not None:
                out.append(f"{key} {replace[key]}")
            continue
        out.append(line)
    missing = set(replace) - seen
    if missing:
        raise KeyError(f"options not in the deployed config: {sorted(missing)}")
    return "\n".join(out) + "\n"


def _broker_uid() -> int | None:
    """mosquitto started as root drops to user ``mosquitto``: its files must be that user's."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto").pw_uid
    except KeyError:
        return None


def chown_for_broker(folder: Path) -> None:
    """Give ``folder`` and everything in it to the user the broker runs as (when root)."""
    uid = _broker_uid()
    if uid is not None:
        for p in [folder, *folder.rglob("*")]:
            os.chown(p, uid, -1)


def write_passwd(path: Path, users: Mapping[str, str]) -> None:
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True,
                       capture_output=True, text=True)


def make_acl_module():
    """deploy/mosquitto/make_acl.py as a module (it is a script, not part of the package)."""
    import importlib.util

    if "stopline_make_acl" in sys.modules:
        return sys.modules["stopline_make_acl"]
    spec = importlib.util.spec_from_file_location("stopline_make_acl", MAKE_ACL)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def make_acl(site_files: Sequence[Path], camera_user: str = "cam-{camera}") -> str:
    """The ACL that deploy/mosquitto/make_acl.py writes for these site files."""
    from stopline.shared.config import load_site

    return make_acl_module().acl_text([load_site(p) for p in site_files], camera_user)


def acl_users(site_files: Sequence[Path], camera_user: str = "cam-{camera}") -> list[str]:
    from stopline.shared.config import load_site

    return [u.user for u in make_acl_module().build_rules([load_site(p) for p in site_files], camera_user)]


class Mosquitto:
    """One mosquitto process from a deployed config, optionally inside a network namespace."""

    def __init__(self, name: str, conf: Path, *, users: Mapping[str, str], acl: str | None = None,
                 listen: str = "127.0.0.1", port: int | None = None,
                 replace: Mapping[str, str | None] | None = None, extra: str = "",
                 netns: str | None = None, workdir: Path | None = None):
        self.name = name
        self.host = listen
        self.port = port or free_port()
        self.netns = netns
        self._own_dir = workdir is None
        self.dir = workdir or Path(tempfile.mkdtemp(prefix=f"stopline-mq-{name}-"))
        self.dir.chmod(0o755)  # the dropped-privilege broker must reach its files
        (self.dir / "data").mkdir(exist_ok=True)
        (self.dir / "conf.d").mkdir(exist_ok=True)
        self.log_path = self.dir / "mosquitto.log"
        write_passwd(self.dir / "passwd", users)
        opts: dict[str, str | None] = {
            "listener": f"{self.port} {listen}",
            "password_file": str(self.dir / "passwd"),
            "persistence_location": str(self.dir / "data") + "/",
        }
        text = conf.read_text()
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            opts["acl_file"] = str(self.dir / "acl")
        if "include_dir" in text:
            opts["include_dir"] = str(self.dir / "conf.d")
        opts.update(replace or {})
        self.conf_path = self.dir / "mosquitto.conf"
        self.conf_path.write_text(render(text, opts) + extra)
        chown_for_broker(self.dir)
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        # log_dest stdout is block-buffered into a file: line-buffer it to read readiness from it
        argv = ["stdbuf", "-oL", MOSQUITTO, "-c", str(self.conf_path)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        atexit.register(self.close)  # never leave a broker behind, whatever the test did
        try:
            self.wait_log("running", timeout, since_start=True)
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM: the broker saves its database and exits (what a restart does)."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: a crash; nothing saved since the last autosave."""
        return self._signal(signal.SIGKILL, 5.0)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def _signal(self, sig: int, timeout: float) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def close(self) -> None:
        atexit.unregister(self.close)
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Mosquitto":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ observing

    def log(self, since_start: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        return data[self._log_offset:].decode(errors="replace") if since_start else data.decode(errors="replace")

    def wait_log(self, text: str, timeout: float, since_start: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(since_start):
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"mosquitto {self.name}: no {text!r} in its log after {timeout}s:\n{self.log()}")
