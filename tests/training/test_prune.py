"""Structured pruning really removes channels (train extra only: skipped without ultralytics)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    out = []
    for i in range(4):
        img = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
        cv2.rectangle(img, (40 + 20 * i, 60), (160 + 20 * i, 140), (30, 30, 200), -1)
        out.append(d / f"{i}.jpg")
        cv2.imwrite(str(out[-1]), img)
    return out


def _model():
    from stopline.training.env import ultralytics

    torch.manual_seed(0)
    m = ultralytics().YOLO("yolov8n.yaml").model.float().eval()  # random init, nothing downloaded
    return m


def test_pruning_removes_channels_and_keeps_the_output_layout(frames):
    from stopline.training.prune import find_sites, prune_network

    model = _model()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)[0].shape
    _, report = prune_network(model, frames, ratio=0.5, imgsz=128)
    assert report["params_after"] < 0.9 * report["params_before"]
    kept = [v["kept"] for v in report["layers"].values()]
    assert all(k % 8 == 0 or k == v["channels"] for k, v in zip(kept, report["layers"].values()))
    for s in find_sites(model):  # the layers are really smaller, not zero-filled
        assert s.producer.conv.weight.shape[0] == report["layers"][s.name]["kept"]
        assert s.producer.bn.num_features == report["layers"][s.name]["kept"]
    with torch.no_grad():
        assert model(x)[0].shape == before  # same boxes and classes out


def test_dropped_channels_are_the_least_firing(frames):
    from stopline.training.prune import Site, prune_site

    model = _model()
    site = next(s for s in __import__("stopline.training.prune", fromlist=["find_sites"]).find_sites(model)
                if s.producer.conv.out_channels == 64)
    n = site.producer.conv.out_channels
    fire = np.linspace(0, 1, n)[::-1].copy()  # channel 0 fires most, the last ones never
    stats = {"fire": fire, "mean": np.zeros(n)}
    w_before = site.producer.conv.weight.detach().clone()
    assert isinstance(site, Site)
    n0, k = prune_site(site, stats, ratio=0.25)
    assert (n0, k) == (64, 48)
    torch.testing.assert_close(site.producer.conv.weight.detach(), w_before[:48])


def test_ratio_out_of_range_is_refused(frames):
    from stopline.training.env import ToolchainError
    from stopline.training.prune import prune_network

    with pytest.raises(ToolchainError, match="ratio"):
        prune_network(_model(), frames, ratio=1.0)
