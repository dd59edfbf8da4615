"""Detector tests: make the helpers in this folder (det_scene, det_mjpeg) importable."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
