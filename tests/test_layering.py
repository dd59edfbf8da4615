"""The layers, checked on the source: a service never imports another service (they talk only
through messages on the bus), and ``stopline.shared`` imports no service. What runs several
services' steps in one process (``stopline detect --read-plates``, ``stopline demo``) is composed
above them, in the ``stopline`` app layer."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "services"
SHARED = REPO / "shared"


def module_name(path: Path, root: Path, package: str) -> str:
    """``services/plate_reader/service.py`` -> ``stopline.services.plate_reader.service``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions included), relative imports
    resolved against ``module``, plus constant names passed to ``importlib.import_module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # from pkg import submodule
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def service_of(module: str, services_root: Path) -> str | None:
    """``stopline.services.<name>...`` -> ``<name>`` for a service package, else None."""
    parts = module.split(".")
    if parts[:2] != ["stopline", "services"] or len(parts) < 3:
        return None
    return parts[2] if (services_root / parts[2]).is_dir() else None


def cross_service_imports(services_root: Path) -> list[str]:
    """``file: imports module`` for each import of one service package by another."""
    bad = []
    for pkg in sorted(p for p in services_root.iterdir() if (p / "__init__.py").is_file()):
        for path in sorted(pkg.rglob("*.py")):
            module = module_name(path, services_root, "stopline.services")
            for imported in sorted(imported_modules(path, module)):
                other = service_of(imported, services_root)
                if other is not None and other != pkg.name:
                    bad.append(f"{path.relative_to(services_root.parent)}: imports {imported}")
    return bad


def test_no_service_imports_another_service():
    assert cross_service_imports(SERVICES) == []


def test_shared_imports_no_service():
    bad = []
    for path in sorted(SHARED.rglob("*.py")):
        module = module_name(path, SHARED, "stopline.shared")
        bad += [f"{path.relative_to(REPO)}: imports {m}" for m in sorted(imported_modules(path, module))
                if m == "stopline.services" or m.startswith("stopline.services.")]
    assert bad == []


def test_the_check_sees_every_kind_of_cross_import(tmp_path):
    """The scan above is only as good as this: absolute, lazy, relative and importlib imports of
    another service are all found, imports within a service and of shared are not."""
    root = tmp_path / "services"
    for name in ("plate_reader", "vehicle_detector"):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
    (root / "vehicle_detector" / "ok.py").write_text(
        "from stopline.shared.plates import PlateReader\nfrom . import rules\n"
        "from stopline.services.vehicle_detector.pipeline import DetectorPipeline\n")
    (root / "vehicle_detector" / "bad.py").write_text(
        "import stopline.services.plate_reader.service\n"
        "def f():\n    from stopline.services.plate_reader.reading import read_plates\n"
        "from ..plate_reader import service\n"
        "import importlib\nimportlib.import_module('stopline.services.plate_reader.cli')\n")
    assert cross_service_imports(root) == [
        "services/vehicle_detector/bad.py: imports stopline.services.plate_reader",
        "services/vehicle_detector/bad.py: imports stopline.services.plate_reader.cli",
        "services/vehicle_detector/bad.py: imports stopline.services.plate_reader.reading",
        "services/vehicle_detector/bad.py: imports stopline.services.plate_reader.reading.read_plates",
        "services/vehicle_detector/bad.py: imports stopline.services.plate_reader.service",
    ]
