"""Fine-tune easyocr's English recogniser on plates: real crops plus synthetic plates.

* Real crops: the plate photos' boxes (and corners, where the labels give them: rectified to a
  flat plate as the reader does), training photos only (``real_data.plate_split``); the ``val``
  photos choose the checkpoint, the ``test`` photos are never seen.
* Synthetic plates: many layouts (US, EU, BR patterns; one or two rows of small text above and
  below the character row that the label leaves out, as a state name or slogan), drawn in the
  fonts on the machine (TrueType through Pillow, OpenCV's Hershey faces), with what cameras do:
  blur, low resolution, JPEG, glare, night/IR, tilt.
* CTC loss on easyocr's own network (``english_g2``, or a fine-tuned state dict to continue from),
  Adam at a small learning rate decaying (cosine) to a tenth over the run; the model
  then goes through the same ONNX export and INT8 quantisation as the shipped recogniser.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from stopline.shared.plates.onnx_recognizer import prepare

from .env import ToolchainError
from .ocr import PlateCrop, easyocr_reader, normalise
from .real_data import plate_split, read_plate_photos

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
# L letter, D digit, anything else printed as is (and left out of the label when not alphanumeric)
LAYOUTS = ["DLLLDDD", "LLLDDDD", "DLLLDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DDDDLL", "LLL DDDD",
           "DLL DDDD", "LLLLDDD", "LDDDDDD", "DDDDDDD", "LLDLDDD", "DLLLLDD", "LLLLLLL", "LLLLL",
           "LL DDDDD", "LL-DDD-LL", "LL DD LLL", "L DDDD LL", "LLL-DDDD", "LLLDLDD", "LLDDLLL", "LL DDD LL"]
TOP_TEXT = ["CALIFORNIA", "TEXAS", "Florida", "NEW YORK", "Illinois", "OHIO", "Georgia", "ARIZONA",
            "Sunshine State", "Land of Lincoln", "Empire State", "THE LONE STAR STATE", "dmv.ca.gov"]
BOTTOM_TEXT = ["Explore Minnesota", "Great Lakes", "GRAND CANYON STATE", "In God We Trust",
               "Peach State", "Live Free or Die", "Dealer Name Motors", "BRASIL", "Famous Potatoes"]


def _fonts() -> list[Path]:
    found = []
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if folder.is_dir():
            found += [p for p in folder.rglob("*.ttf") if "Math" not in p.name]
    return sorted(found)


def random_text(rng: np.random.Generator) -> tuple[str, str]:
    """(as printed, label)"""
    layout = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
    printed = "".join(LETTERS[rng.integers(26)] if c == "L" else DIGITS[rng.integers(10)] if c == "D" else c
                      for c in layout)
    return printed, normalise(printed)


def _text_layer(text: str, height: int, font: Path | None, condense: float) -> np.ndarray:
    """The text as a white-on-black mask, ``height`` px tall glyphs, squeezed by ``condense``."""
    if font is None:  # one of OpenCV's Hershey faces
        face = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX][len(text) % 3]
        th = max(1, height // 8)
        scale = cv2.getFontScaleFromHeight(face, height, th)
        (tw, tht), base = cv2.getTextSize(text, face, scale, th)
        mask = np.zeros((tht + base + 2 * th, tw + 2 * th), np.uint8)
        cv2.putText(mask, text, (th, tht + th), face, scale, 255, th, cv2.LINE_AA)
    else:
        from PIL import Image, ImageDraw, ImageFont

        f = ImageFont.truetype(str(font), height)
        x0, y0, x1, y1 = f.getbbox(text)
        layer = Image.new("L", (x1 + 4, y1 + 4), 0)
        ImageDraw.Draw(layer).text((2, 2), text, fill=255, font=f)
        mask = np.asarray(layer)[max(0, y0):, :]
    return cv2.resize(mask, (max(1, int(mask.shape[1] * condense)), mask.shape[0]))


def _paint(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, colour: tuple[int, int, int]) -> None:
    h = min(mask.shape[0], canvas.shape[0] - y)
    w = min(mask.shape[1], canvas.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    a = (mask[:h, :w].astype(np.float32) / 255.0)[..., None]
    region = canvas[y:y + h, x:x + w].astype(np.float32)
    canvas[y:y + h, x:x + w] = (region * (1 - a) + np.array(colour, np.float32) * a).astype(np.uint8)


def synthetic_plate(rng: np.random.Generator, fonts: list[Path]) -> tuple[np.ndarray, str]:
    """A plate crop (BGR) and its label: the character row, with small text above and below it
    (state name, slogan, dealer frame) that is not part of the label."""
    printed, label = random_text(rng)
    h_char = int(rng.integers(28, 60))
    font = fonts[int(rng.integers(len(fonts)))] if fonts and rng.random() < 0.75 else None
    main = _text_layer(printed, h_char, font, float(rng.uniform(0.65, 1.0)))
    light = rng.random() < 0.8
    bg = tuple(int(v) for v in (rng.integers(190, 256, 3) if light else rng.integers(0, 80, 3)))
    ink = tuple(int(v) for v in (rng.integers(0, 90, 3) if light else rng.integers(200, 256, 3)))
    if light and rng.random() < 0.3:  # coloured characters (blue, red, green on white)
        ink = [(150, 40, 20), (20, 20, 160), (40, 110, 20)][int(rng.integers(3))]
    side, top, bottom = int(h_char * rng.uniform(0.3, 0.8)), int(h_char * rng.uniform(0.3, 0.7)), \
        int(h_char * rng.uniform(0.25, 0.6))
    canvas = np.empty((main.shape[0] + top + bottom, main.shape[1] + 2 * side, 3), np.uint8)
    canvas[:] = bg
    _paint(canvas, main, side, top, ink)
    small = max(8, int(h_char * 0.26))
    for text, y, p in ((TOP_TEXT, 1, 0.6), (BOTTOM_TEXT, top + main.shape[0] + 1, 0.4)):
        if rng.random() < p:
            m = _text_layer(text[int(rng.integers(len(text)))], small, font, 1.0)
            if m.shape[1] < canvas.shape[1]:
                _paint(canvas, m[: max(1, (top if y == 1 else bottom) - 2)],
                       int(rng.integers(0, canvas.shape[1] - m.shape[1] + 1)), y, ink)
    if rng.random() < 0.6:
        cv2.rectangle(canvas, (1, 1), (canvas.shape[1] - 2, canvas.shape[0] - 2), ink, int(rng.integers(1, 4)))
    return canvas, label


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera effects on a plate crop: tilt, crop jitter, low resolution, blur, glare, night/IR, JPEG."""
    h, w = img.shape[:2]
    if rng.random() < 0.6:  # tilt / perspective, small
        d = rng.uniform(-0.06, 0.06, (4, 2)) * [w, h]
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, (src + d).astype(np.float32)), (w, h),
                                  borderMode=cv2.BORDER_REPLICATE)
    # crop jitter: the localiser's box is never exact
    x0, x1 = int(rng.uniform(-0.04, 0.02) * w), int(rng.uniform(-0.04, 0.02) * w)
    y0, y1 = int(rng.uniform(-0.08, 0.06) * h), int(rng.uniform(-0.08, 0.06) * h)
    img = cv2.copyMakeBorder(img, max(0, -y0), max(0, -y1), max(0, -x0), max(0, -x1), cv2.BORDER_REPLICATE)
    img = img[max(0, y0):img.shape[0] - max(0, y1), max(0, x0):img.shape[1] - max(0, x1)]
    if rng.random() < 0.5:
        f = rng.uniform(0.25, 0.7) * min(1.0, 40 / max(1, img.shape[0]) * 2)
        small = cv2.resize(img, (max(8, int(img.shape[1] * f)), max(6, int(img.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.6)))
    f32 = img.astype(np.float32)
    if rng.random() < 0.2:  # glare: a bright blob
        yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
        cy, cx = rng.uniform(0, img.shape[0]), rng.uniform(0, img.shape[1])
        r = rng.uniform(0.2, 0.6) * img.shape[1]
        f32 += (np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * rng.uniform(60, 160))[..., None]
    if rng.random() < 0.25:  # night / infrared
        grey = cv2.cvtColor(f32.clip(0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        f32 = np.repeat((grey * rng.uniform(0.3, 0.8))[..., None], 3, axis=2)
    f32 = f32 * rng.uniform(0.6, 1.2) + rng.uniform(-30, 30) + rng.normal(0, rng.uniform(0, 8), f32.shape)
    img = f32.clip(0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 90))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def rectify(img: np.ndarray, corners: np.ndarray, height: int = 64) -> np.ndarray:
    """The quadrilateral ``corners`` (TL, TR, BR, BL) warped to an upright plate."""
    w = float(np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])) / 2
    h = float(np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])) / 2
    out_w = max(8, int(round(w * height / max(h, 1.0))))
    dst = np.float32([[0, 0], [out_w, 0], [out_w, height], [0, height]])
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(img, m, (out_w, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _corners(txt: Path) -> np.ndarray | None:
    fields = txt.read_text().strip().split("\t")
    if len(fields) < 7:
        return None
    try:
        pts = np.array([[float(v) for v in p.split(",")] for p in fields[6].split()], np.float32)
    except ValueError:
        return None
    return pts if pts.shape == (4, 2) and np.ptp(pts[:, 0]) > 4 else None


def _labelled(plates_root: Path, regions: list[str], split: str) -> Iterator[tuple[str, str, np.ndarray, np.ndarray | None,
                                                                               tuple[int, int, int, int]]]:
    """(source, label, photo, labelled corners TL TR BR BL or None, box x y w h) of the readable
    plates of ``split``."""
    for region in regions:
        for p in read_plate_photos(plates_root / region):
            if p.box is None or plate_split(region, p.image.stem) != split or not normalise(p.text):
                continue
            img = cv2.imread(str(p.image))
            if img is None:
                continue
            corners = _corners(p.image.with_suffix(".txt")) if p.image.with_suffix(".txt").is_file() else None
            yield f"{region}/{p.image.name}", normalise(p.text), img, corners, p.box


def real_crops(plates_root: Path, regions: list[str], split: str) -> list[PlateCrop]:
    """Tight crops of the readable plates of ``split``: rectified from corners where given, else
    the box."""
    out = []
    for source, text, img, corners, (x, y, w, h) in _labelled(plates_root, regions, split):
        crop = rectify(img, corners) if corners is not None else img[max(0, y):y + h, max(0, x):x + w]
        if crop.size:
            out.append(PlateCrop(source, text, crop))
    return out


def line_crops(plates_root: Path, regions: list[str], split: str) -> list[PlateCrop]:
    """The labelled plates' character rows as the plate reader crops them for its recogniser
    (``PlateReader.line_crops``: the text line found again close up inside the plate, at the
    reader's normal and wide margins, unstretched): what the recogniser reads in service."""
    from stopline.shared.plates.reader import PlateReader
    from stopline.shared.plates.types import PlateBox

    reader = PlateReader(engine="rapidocr", localiser="textdet", stretch=1.0)
    out = []
    for source, text, img, corners, (x, y, w, h) in _labelled(plates_root, regions, split):
        plate = PlateBox(box=(float(max(0, x)), float(max(0, y)), float(x + w), float(y + h)), score=1.0,
                         corners=corners, source="label")
        for k, crop in enumerate(reader.line_crops(img, plate)):
            if crop.size:
                out.append(PlateCrop(f"{source}#line{k}", text, crop))
    return out


@dataclass
class FineTuneReport:
    steps: int
    minutes: float
    val_exact_before: float
    val_exact_after: float
    best_step: int


def _exact(model, converter, crops: list[PlateCrop], allowed: np.ndarray) -> float:
    import torch

    if not crops:
        return 0.0
    model.eval()
    right = 0
    with torch.no_grad():
        for c in crops:
            x = torch.from_numpy(prepare([c.image])[0])
            probs = model(x, None).softmax(2)[0].numpy()
            probs = probs * allowed
            idx = probs.argmax(1)
            text = "".join(converter.character[i] for k, i in enumerate(idx) if i and (k == 0 or i != idx[k - 1]))
            right += normalise(text) == c.text
    model.train()
    return right / len(crops)


def lr_at(progress: float, lr: float, floor: float) -> float:
    """Cosine decay from ``lr`` at ``progress`` 0 to ``lr * floor`` at 1 (and after)."""
    p = min(max(progress, 0.0), 1.0)
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p)))


def load_init(model, init: Path) -> None:
    """Start from a fine-tuned state dict (``fine_tune``'s own output) instead of english_g2."""
    if not init.is_file():
        raise ToolchainError(f"--init {init}: no such state dict")
    import torch

    try:
        model.load_state_dict(torch.load(init, map_location="cpu"))
    except (RuntimeError, KeyError, EOFError, OSError) as e:
        raise ToolchainError(f"--init {init}: not a state dict of the easyocr english_g2 recogniser: {e}") from None


def fine_tune(plates_root: Path, regions: list[str], out_pt: Path, *, steps: int = 1500, batch: int = 24,
              real_share: float = 0.5, lr: float = 1e-4, lr_floor: float = 0.1, threads: int = 1, seed: int = 0,
              hours: float | None = None, eval_every: int = 50, init: Path | None = None,
              reader_crops: bool = False) -> FineTuneReport:
    """Fine-tune and save the best (by exact match on the real val crops) state dict to ``out_pt``.

    ``init``: a state dict to start from (default: easyocr's english_g2). The learning rate decays
    (cosine) from ``lr`` to ``lr * lr_floor`` over the run: over ``steps``, or over ``hours`` where
    that budget ends first. ``reader_crops``: the real plates also as the plate reader crops them
    (``line_crops``), in training and in the val crops that choose the checkpoint."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    reader = easyocr_reader(quantize=False, threads=threads)
    model, converter = reader.recognizer, reader.converter
    if init is not None:
        load_init(model, init)
    train = real_crops(plates_root, regions, "train")
    val = real_crops(plates_root, regions, "val")
    if reader_crops:
        train += line_crops(plates_root, regions, "train")
        val += line_crops(plates_root, regions, "val")
    log.info("ocr fine-tune: %d real training crops, %d val crops", len(train), len(val))
    if not train:
        raise ToolchainError(f"{plates_root}: no real training crops in {regions}")
    fonts = _fonts()
    allowed = np.zeros(len(converter.character), np.float32)
    allowed[0] = 1
    for ch in LETTERS + DIGITS:
        allowed[converter.dict[ch]] = 1
    before = _exact(model, converter, val, allowed)
    log.info("ocr fine-tune: real val exact before %.3f", before)
    best, best_step = before, 0
    torch.save(model.state_dict(), out_pt)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    started = time.time()
    step = 0
    for step in range(1, steps + 1):
        progress = (step - 1) / steps
        if hours is not None:
            progress = max(progress, (time.time() - started) / (hours * 3600))
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, lr, lr_floor)
        imgs, labels = [], []
        for _ in range(batch):
            if rng.random() < real_share:
                c = train[int(rng.integers(len(train)))]
                img, label = c.image, c.text
            else:
                img, label = synthetic_plate(rng, fonts)
            imgs.append(degrade(img, rng))
            labels.append(label)
        x = torch.from_numpy(prepare(imgs)[0])
        logits = model(x, None)
        log_probs = logits.log_softmax(2).permute(1, 0, 2)
        targets = torch.tensor([converter.dict[ch] for t in labels for ch in t], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in labels], dtype=torch.long)
        loss = ctc(log_probs, targets, torch.full((batch,), log_probs.shape[0], dtype=torch.long), lengths)
        loss_value = float(loss.detach())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % 25 == 0:
            log.info("ocr fine-tune: step %d/%d, loss %.3f, lr %.2g, %.0fs", step, steps, loss_value,
                     opt.param_groups[0]["lr"], time.time() - started)
        out_of_time = hours is not None and time.time() - started > hours * 3600
        if step % eval_every == 0 or step == steps or out_of_time:
            acc = _exact(model, converter, val, allowed)
            log.info("ocr fine-tune: step %d: real val exact %.3f (best %.3f)", step, acc, best)
            if acc >= best:
                best, best_step = acc, step
                torch.save(model.state_dict(), out_pt)
        if out_of_time:
            break
    return FineTuneReport(step, round((time.time() - started) / 60, 1), before, best, best_step)


def export_fine_tuned(state: Path, out: Path) -> Path:
    """FP32 ONNX of the fine-tuned recogniser (same graph and metadata as the shipped one)."""
    import torch

    from .ocr import export_recognizer

    return export_recognizer(out, state_dict=torch.load(state, map_location="cpu"))
