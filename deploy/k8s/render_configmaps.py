#!/usr/bin/env python3
"""Rewrite 03-mosquitto-config.yaml from deploy/mosquitto/central.conf and acl, and the camera
files in 02-site-config.yaml from deploy/sites/cameras/. Run after editing those sources;
tests/deploy checks the manifests match them.

    python deploy/k8s/render_configmaps.py
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent


def block(text: str) -> str:
    return textwrap.indent(text.rstrip("\n") + "\n", "    ")


def mosquitto_configmap() -> str:
    central = (DEPLOY / "mosquitto" / "central.conf").read_text()
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    return (
        "# The central broker's configuration: deploy/mosquitto/central.conf and deploy/mosquitto/acl\n"
        "# verbatim (made by deploy/k8s/render_configmaps.py; tests/deploy checks they stay identical).\n"
        "# The password file is made at start-up from the stopline-mqtt Secret (see 10-mosquitto.yaml).\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mosquitto-config\n  namespace: stopline\ndata:\n"
        f"  mosquitto.conf: |\n{block(central)}  acl: |\n{block(acl)}"
    )


def site_configmap(current: str) -> str:
    """Keep the site files as written in the manifest, refresh the camera files."""
    data = yaml.safe_load(current)["data"]
    header = current[: current.index("\ndata:\n") + len("\ndata:\n")]
    out = [header]
    for key in data:
        cam = DEPLOY / "sites" / "cameras" / key
        text = cam.read_text() if cam.exists() else data[key]
        out.append(f"  {key}: |\n{block(text)}")
    return "".join(out)


def main() -> int:
    (HERE / "03-mosquitto-config.yaml").write_text(mosquitto_configmap())
    site = HERE / "02-site-config.yaml"
    site.write_text(site_configmap(site.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
