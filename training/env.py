"""Import guard and offline settings for the training toolchain (train extra only).

Ultralytics likes to fetch things (fonts for plots, weights for AMP checks, hub/analytics calls);
nothing here may touch the network, so it is pinned offline before the first import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class ToolchainError(RuntimeError):
    """The training toolchain cannot do what was asked; the text says why and what to do."""


def _offline_env() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    # settings (incl. the sync flag) live in a private folder, not the user's home
    cfg = Path(os.environ.get("YOLO_CONFIG_DIR", Path(tempfile.gettempdir()) / "stopline-ultralytics"))
    cfg.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)


def ultralytics():  # -> module
    """The ``ultralytics`` module, offline; a clear error where the train extra is missing."""
    _offline_env()
    try:
        import ultralytics as ul
        from ultralytics.utils import SETTINGS, USER_CONFIG_DIR
    except ImportError as e:
        raise ToolchainError("this needs the train extra: pip install 'stopline[train]' "
                             f"(ultralytics, torch, onnx, easyocr); import failed: {e}") from None
    _fonts(Path(USER_CONFIG_DIR))
    try:
        SETTINGS.update({"sync": False, "hub": False, "wandb": False, "mlflow": False,
                         "tensorboard": False, "clearml": False, "comet": False, "dvc": False,
                         "neptune": False, "raytune": False})
    except (KeyError, ValueError, TypeError):  # older/newer settings schemas: best effort
        pass
    return ul


def torch_threads(n: int | None = None) -> int:
    """Torch intra-op threads for training on a small shared CPU box."""
    import torch

    n = n or max(1, min(os.cpu_count() or 1, 8))
    torch.set_num_threads(n)
    return n


def device() -> str:
    """``"0"`` (first GPU) where CUDA works, else ``"cpu"``."""
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def _fonts(cfg: Path) -> None:
    """ultralytics' dataset check probes GitHub for Arial.ttf unless the font is already in its
    config folder (YOLO_OFFLINE does not stop that probe); matplotlib's DejaVu Sans stands in."""
    cfg.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (cfg / name).is_file():
            try:
                import matplotlib

                src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
                shutil.copyfile(src, cfg / name)
            except (ImportError, OSError):
                pass
