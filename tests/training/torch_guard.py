"""Run ``stopline`` (or a snippet) while recording every attempt to import the training stack.

``python torch_guard.py REPORT.json serve plate-reader --config site.yaml`` runs the CLI; at exit
(a service leaves on SIGTERM through its own handler) REPORT.json lists each import of torch,
torchvision, ultralytics or easyocr that was *attempted* (seen by a meta-path finder placed
first, so an attempt is caught even where the package is not installed or the error is
swallowed) and each such module that ended up in ``sys.modules``.
``python torch_guard.py REPORT.json --exec CODE`` runs CODE instead (the guard's own control).
"""

import atexit
import importlib.abc
import json
import sys

FORBIDDEN = ("torch", "torchvision", "ultralytics", "easyocr")
attempts: list[str] = []


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            attempts.append(name)
        return None  # let the real finders decide; we only watch


def _report(path: str) -> None:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    with open(path, "w") as f:
        json.dump({"attempts": attempts, "loaded": loaded, "modules": len(sys.modules)}, f)


def main() -> int:
    report, *argv = sys.argv[1:]
    sys.meta_path.insert(0, Recorder())
    atexit.register(_report, report)
    if argv[:1] == ["--exec"]:
        try:
            exec(argv[1], {})
        except ImportError:
            pass
        return 0
    from stopline.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
