"""Activation-guided structured pruning of a YOLOv8 detector: channels are removed, not zeroed.

1. Run the trained model over a wide set of frames and record, per output channel of every
   prunable convolution, how often it fires (activation output > 0: ReLU or SiLU) and its mean output.
2. In each prunable layer, drop the channels that fire least (a chosen ratio, keeping a multiple
   of 8 for the CPU kernels): the conv's output filters and BN entries go, and so do the
   matching input slices of the layer(s) that consume them. The dropped channels' mean output
   is folded into the consumer's bias / BN running mean, so the network's first guess after
   pruning stays close.
3. Fine-tune the smaller network a few epochs with the training recipe.

Prunable means the channels are private to a pair of layers (no residual add or concat on
them), which needs no dependency graph: Bottleneck ``cv1 -> cv2``, SPPF ``cv1 -> cv2`` (the
concat of the max-pools repeats each channel 4 times), and the detection head's box and class
branches (``conv0 -> conv1 -> final 1x1``).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .env import ToolchainError, ultralytics
from .quantize import preprocess


@dataclass
class Site:
    """A producer conv whose output channels only feed ``consumers`` (input channel repeats)."""

    name: str
    producer: object  # ultralytics Conv (conv + bn + act)
    consumers: list[object]  # ultralytics Conv or torch.nn.Conv2d
    repeats: int = 1  # SPPF: the consumer sees the producer's channels 4 times (concat)


def find_sites(model) -> list[Site]:  # model: ultralytics DetectionModel
    from ultralytics.nn.modules import SPPF, Bottleneck, Detect

    sites: list[Site] = []
    for name, m in model.named_modules():
        if isinstance(m, Bottleneck) and m.cv1.conv.groups == 1 and m.cv2.conv.groups == 1:
            sites.append(Site(f"{name}.cv1", m.cv1, [m.cv2]))
        elif isinstance(m, SPPF):
            sites.append(Site(f"{name}.cv1", m.cv1, [m.cv2], repeats=4))
        elif type(m) is Detect or (isinstance(m, Detect) and hasattr(m, "cv2") and hasattr(m, "cv3")):
            for branch in ("cv2", "cv3"):
                for i, seq in enumerate(getattr(m, branch)):
                    layers = list(seq)
                    if len(layers) != 3 or not all(hasattr(x, "conv") for x in layers[:2]):
                        continue  # YOLO11's depthwise class branch: not a plain chain
                    if layers[0].conv.groups != 1 or layers[1].conv.groups != 1:
                        continue
                    sites.append(Site(f"{name}.{branch}.{i}.0", layers[0], [layers[1]]))
                    sites.append(Site(f"{name}.{branch}.{i}.1", layers[1], [layers[2]]))
    return sites


def activation_stats(model, sites: list[Site], frames: list[Path], imgsz: int) -> dict[str, dict[str, np.ndarray]]:
    """Per site: firing rate (share of positions with output > 0) and mean output per channel."""
    import torch

    acc: dict[str, dict[str, object]] = {s.name: {"fire": 0.0, "mean": 0.0, "n": 0} for s in sites}
    hooks = []

    def hook_for(name: str):
        def hook(_m, _inp, out):
            o = out.detach().float()
            a = acc[name]
            a["fire"] = a["fire"] + (o > 0).float().mean(dim=(0, 2, 3)).double()
            a["mean"] = a["mean"] + o.mean(dim=(0, 2, 3)).double()
            a["n"] = int(a["n"]) + 1
        return hook

    for s in sites:
        hooks.append(s.producer.register_forward_hook(hook_for(s.name)))
    model.eval()
    used = 0
    try:
        with torch.no_grad():
            for p in frames:
                img = cv2.imread(str(p))
                if img is None:
                    continue
                model(torch.from_numpy(preprocess(img, (imgsz, imgsz))))
                used += 1
    finally:
        for h in hooks:
            h.remove()
    if used == 0:
        raise ToolchainError("no readable frames to gather activation statistics on")
    return {k: {"fire": (v["fire"] / v["n"]).cpu().numpy(), "mean": (v["mean"] / v["n"]).cpu().numpy()}
            for k, v in acc.items()}


def _keep_count(n: int, ratio: float, multiple: int = 8) -> int:
    keep = max(multiple, int(math.ceil(n * (1 - ratio) / multiple) * multiple))
    return min(n, keep)


def _slice_conv_out(conv, keep):  # conv: torch.nn.Conv2d
    import torch

    conv.weight = torch.nn.Parameter(conv.weight.data[keep].clone())
    if conv.bias is not None:
        conv.bias = torch.nn.Parameter(conv.bias.data[keep].clone())
    conv.out_channels = len(keep)


def _slice_bn(bn, keep) -> None:
    import torch

    bn.weight = torch.nn.Parameter(bn.weight.data[keep].clone())
    bn.bias = torch.nn.Parameter(bn.bias.data[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = len(keep)


def prune_site(site: Site, stats: dict[str, np.ndarray], ratio: float) -> tuple[int, int]:
    """Remove the least-firing output channels of ``site.producer``; returns (before, after)."""
    import torch

    conv, bn = site.producer.conv, site.producer.bn
    n = conv.out_channels
    k = _keep_count(n, ratio)
    if k >= n:
        return n, n
    # least firing first; ties broken by the smaller mean output
    order = np.lexsort((np.abs(stats["mean"]), stats["fire"]))
    drop = np.sort(order[: n - k])
    keep = np.sort(order[n - k:])
    keep_t = torch.as_tensor(keep, dtype=torch.long)
    _slice_conv_out(conv, keep_t)
    _slice_bn(bn, keep_t)
    mean_drop = torch.as_tensor(stats["mean"][drop], dtype=torch.float32)
    for c in site.consumers:
        cc = c.conv if hasattr(c, "conv") else c
        w = cc.weight.data  # (out, in, kh, kw)
        in_keep = torch.cat([keep_t + r * n for r in range(site.repeats)])
        in_drop = torch.cat([torch.as_tensor(drop, dtype=torch.long) + r * n for r in range(site.repeats)])
        # constant input the consumer no longer receives, folded into what follows it
        shift = (w[:, in_drop].sum(dim=(2, 3)) * mean_drop.repeat(site.repeats)).sum(dim=1)
        cc.weight = torch.nn.Parameter(w[:, in_keep].clone())
        cc.in_channels = len(in_keep)
        if hasattr(c, "bn"):
            c.bn.running_mean = c.bn.running_mean - shift
        elif cc.bias is not None:
            cc.bias = torch.nn.Parameter(cc.bias.data + shift)
    return n, k


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def prune_network(model, frames: list[Path], ratio: float, imgsz: int = 256,
                  n_frames: int = 300) -> tuple[object, dict[str, object]]:
    """Prune an ultralytics DetectionModel in place; returns (model, report)."""
    if not 0.0 < ratio < 1.0:
        raise ToolchainError(f"prune ratio must be in (0, 1), not {ratio}")
    sites = find_sites(model)
    if not sites:
        raise ToolchainError("no prunable layers found (expected a YOLOv8 detection model)")
    step = max(1, len(frames) // n_frames)
    sample = frames[::step][:n_frames]
    stats = activation_stats(model, sites, sample, imgsz)
    before = count_params(model)
    layers = {}
    for s in sites:
        n, k = prune_site(s, stats[s.name], ratio)
        fire = stats[s.name]["fire"]
        layers[s.name] = {"channels": n, "kept": k, "never_fire": int((fire < 0.01).sum()),
                          "rarely_fire": int((fire < 0.05).sum())}
    report = {"ratio": ratio, "params_before": before, "params_after": count_params(model),
              "frames": len(sample), "layers": layers}
    return model, report


def prune_model(weights: Path, frames: list[Path], ratio: float, imgsz: int = 320,
                n_frames: int = 300) -> tuple[object, dict[str, object]]:
    """Load ``weights`` (.pt), prune at ``ratio`` guided by ``frames``; returns (YOLO, report)."""
    if not 0.0 < ratio < 1.0:
        raise ToolchainError(f"prune ratio must be in (0, 1), not {ratio}")
    if not weights.is_file() or weights.suffix != ".pt":
        raise ToolchainError(f"{weights}: expected an ultralytics YOLO detection .pt file")
    ul = ultralytics()
    yolo = ul.YOLO(str(weights))
    yolo.model, report = prune_network(yolo.model.float(), frames, ratio, imgsz=imgsz, n_frames=n_frames)
    return yolo, report


def fine_tune(yolo, data_yaml: Path, out_dir: Path, epochs: int, imgsz: int, name: str = "pruned",
              threads: int | None = None, hours: float | None = None, fraction: float = 1.0) -> tuple[Path, int]:
    """Fine-tune the pruned network itself (ultralytics would otherwise rebuild it from YAML).
    Returns the weights and the epochs run (with ``hours``, ultralytics fits them to the budget)."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    from .env import device, torch_threads

    pruned = yolo.model

    class PrunedTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            m = copy.deepcopy(pruned)
            for p in m.parameters():
                p.requires_grad = True
            return m

    dev = device()
    if dev == "cpu":
        torch_threads(threads)
    trainer = PrunedTrainer(overrides=dict(
        model=str(getattr(yolo, "ckpt_path", None) or "yolov8n.yaml"), data=str(data_yaml.resolve()),
        imgsz=imgsz, epochs=epochs, batch=8, device=dev, workers=1, amp=dev != "cpu", plots=False,
        val=False, cache="ram", optimizer="AdamW", lr0=0.0005, warmup_epochs=0, close_mosaic=max(1, epochs // 2),
        time=hours, fraction=fraction,
        project=str(out_dir.resolve() / "runs"), name=name, exist_ok=True, verbose=False))
    from .train import add_progress_log

    add_progress_log(trainer, name)
    trainer.train()
    src = Path(trainer.save_dir) / "weights" / "last.pt"
    dst = out_dir / f"{name}.pt"
    import shutil

    shutil.copy2(src, dst)
    return dst, int(trainer.epochs)


def write_report(report: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")
