"""The printable evidence record of an approved violation (``stopline desk evidence-pdf ID``
and the PDF button): annotated stills, the plate close-up, the data, the owner, the reviewer
and decision, the SHA-256 of every file and the signature check, re-done when the PDF is made.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stopline.shared.evidence_render import render_annotated, utc_ms
from stopline.shared.messages import Candidate, EvidenceClip, sha256_hex

from .clips import clip_of
from .desk import Desk
from .integrity import RegisteredKey, Verdict, combine, verify_signature
from .models import CameraKey, Clip, Violation

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # its subsetter logs every glyph at INFO
PAGE_W = 190  # mm of text width on A4 with 10 mm margins


class EvidencePdfError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class FileCheck:
    name: str
    kind: str
    size: int
    sha256: str
    declared: str | None
    ok: bool


def _checks(desk: Desk, v: Violation, clip: Clip | None) -> tuple[list[FileCheck], dict[int, bytes]]:
    """Every file's bytes read back from the store and hashed now."""
    checks, datas = [], {}
    for ev in v.evidence:
        try:
            data = desk.store.read(ev.file_sha256, ev.file_offset, ev.size) if ev.size else b""
        except OSError:
            data = None
        actual = sha256_hex(data) if data is not None else "(missing)"
        if data is not None:
            datas[ev.id] = data
        checks.append(FileCheck(ev.name, ev.role or ev.kind, ev.size, actual, ev.declared_sha256,
                                data is not None and (ev.declared_sha256 in (None, actual))))
    if clip is not None:
        clip_data = desk.store.get(clip.sha256) if desk.store.exists(clip.sha256) else None
        actual = sha256_hex(clip_data) if clip_data is not None else "(missing)"
        checks.append(FileCheck(clip.name, "clip", clip.size, actual, clip.declared_sha256,
                                actual == clip.declared_sha256))
    return checks, datas


def _signature(desk: Desk, v: Violation, clip: Clip | None, checks: list[FileCheck]) -> tuple[Verdict, Verdict | None]:
    """The camera signatures checked now against every key the desk has held for the camera."""
    with desk.session() as s:
        keys = [RegisteredKey(k.key_id, k.public_key_pem)
                for k in s.scalars(select(CameraKey).where(CameraKey.camera_id == v.camera_id))]
    try:
        cand = Candidate.model_validate(json.loads(v.message_json)["candidate"])
        still = combine(verify_signature(cand, keys), [c.name for c in checks if c.kind != "clip" and not c.ok])
    except (ValueError, KeyError) as e:
        still = Verdict("tampered", f"the stored candidate cannot be read: {e}")
    clip_verdict = None
    if clip is not None:
        try:
            meta = EvidenceClip.model_validate(json.loads(clip.meta_json)["clip"])
            clip_verdict = combine(verify_signature(meta, keys),  # type: ignore[arg-type]
                                   [c.name for c in checks if c.kind == "clip" and not c.ok])
        except (ValueError, KeyError) as e:
            clip_verdict = Verdict("tampered", f"the stored clip header cannot be read: {e}")
    return still, clip_verdict


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


class _Pdf(FPDF):
    def __init__(self, title: str, unicode: bool):
        """``unicode``: some text is outside Latin-1 (an owner's name, say): embed DejaVu (when
        the system has it); else the PDF core fonts, which cost nothing to embed."""
        super().__init__(format="A4")
        self.title_text = title
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(True, 14)
        if unicode and (FONT_DIR / "DejaVuSans.ttf").exists():
            self.add_font("body", "", str(FONT_DIR / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
            self.add_font("mono", "", str(FONT_DIR / "DejaVuSansMono.ttf"))
            self.fonts_ok = True
        else:  # the PDF core fonts: Latin-1 only
            self.fonts_ok = False

    def font(self, style: str = "", size: float = 9, mono: bool = False) -> None:
        if self.fonts_ok:
            self.set_font("mono" if mono else "body", "" if mono else style, size)
        else:
            self.set_font("Courier" if mono else "Helvetica", style, size)

    def text_ok(self, text: str) -> str:
        return text if self.fonts_ok else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-11)
        self.font(size=7)
        self.cell(0, 5, self.text_ok(f"{self.title_text} · page {self.page_no()}/{{nb}}"), align="C")

    def heading(self, text: str) -> None:
        self.ln(2)
        self.font("B", 11)
        self.cell(0, 7, self.text_ok(text), new_x="LMARGIN", new_y="NEXT")

    def rows(self, rows: list[tuple[str, str]]) -> None:
        for key, value in rows:
            self.font("B", 9)
            self.cell(48, 5.2, self.text_ok(key))
            self.font("", 9)
            self.multi_cell(PAGE_W - 48, 5.2, self.text_ok(value or "-"), new_x="LMARGIN", new_y="NEXT")


def _image(pdf: _Pdf, data: bytes, width_mm: float) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:  # reads the header only
        w, h = img.size
    h_mm = width_mm * h / w
    if pdf.get_y() + h_mm > pdf.h - 16:
        pdf.add_page()
    pdf.image(io.BytesIO(data), x=pdf.l_margin, y=pdf.get_y(), w=width_mm)
    pdf.set_y(pdf.get_y() + h_mm + 2)


def _load(desk: Desk, violation_id: int) -> tuple[Violation, Clip | None]:
    with desk.session() as s:
        v = s.scalar(select(Violation).where(Violation.id == violation_id).options(
            selectinload(Violation.evidence), selectinload(Violation.vehicle), selectinload(Violation.decider)))
        if v is None:
            raise EvidencePdfError(f"no violation {violation_id}", 404)
        clip = clip_of(s, v)
        s.expunge_all()
    return v, clip


def evidence_pdf(desk: Desk, violation_id: int) -> bytes:
    """The PDF record of an approved violation."""
    v, clip = _load(desk, violation_id)
    if v.status != "approved":
        raise EvidencePdfError(f"violation {violation_id} is {v.status}: only an approved violation has an "
                               "evidence record", 409)
    checks, datas = _checks(desk, v, clip)
    still_verdict, clip_verdict = _signature(desk, v, clip, checks)
    cand = json.loads(v.message_json or "{}").get("candidate", {})
    title = f"stopline evidence record · violation {v.id} · event {v.event_id}"
    people = [v.vehicle.owner_name, v.vehicle.owner_address, v.vehicle.make, v.vehicle.model] if v.vehicle else []
    texts = [*people, v.decider.username if v.decider else "", v.plate_read or "", v.integrity_detail, v.site,
             v.camera_id, v.lane or ""]
    pdf = _Pdf(title, unicode=not all(_latin1(t or "") for t in texts))
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.font("B", 15)
    pdf.cell(0, 9, pdf.text_ok(f"Red-light violation {v.id}: evidence record"), new_x="LMARGIN", new_y="NEXT")
    pdf.font("", 8)
    pdf.cell(0, 5, pdf.text_ok(f"made {utc_ms(time.time())} by the violation desk"), new_x="LMARGIN", new_y="NEXT")

    pdf.heading("Violation")
    amber = cand.get("amber_s")
    pdf.rows([
        ("Event", v.event_id), ("Site / camera", f"{v.site} / {v.camera_id}"), ("Lane", v.lane or "?"),
        ("Crossed the stop line", utc_ms(v.crossed_at)),
        ("Signal", f"{v.signal_phase}, {v.time_into_red_s:.2f} s into red"),
        ("Amber before the red", f"{amber:.2f} s" if amber is not None else "not measured"),
        ("Speed (image)", f"{v.speed_px_s:.0f} px/s" if v.speed_px_s is not None else "unknown"),
        ("Vehicle", ", ".join(x for x in (v.vehicle_class, v.vehicle_colour) if x)),
        ("Plate", f"{v.plate_norm or 'no read'} (read {v.plate_read or '-'}, confidence "
                  f"{100 * (v.plate_confidence or 0):.0f} %{', corrected by a reviewer' if v.plate_corrected else ''})"),
    ])
    pdf.heading("Registered owner")
    if v.vehicle is not None:
        vh = v.vehicle
        pdf.rows([("Owner", vh.owner_name), ("Address", vh.owner_address),
                  ("Registration", f"{vh.plate} ({vh.region}) {vh.make} {vh.model}, {vh.colour} {vh.vehicle_class}")])
    else:
        pdf.rows([("Owner", "no registration found")])
    pdf.heading("Review")
    pdf.rows([("Decision", v.status), ("Reviewer", v.decider.username if v.decider else "?"),
              ("Decided", utc_ms(v.decided_at) if v.decided_at else "?")])
    pdf.heading("Integrity (checked when this record was made)")
    pdf.rows([("Images and signature", f"{still_verdict.integrity.upper()}: {still_verdict.detail}"),
              ("Clip", f"{clip_verdict.integrity.upper()}: {clip_verdict.detail}" if clip_verdict else "no clip"),
              ("At ingestion", f"{v.integrity}: {v.integrity_detail}")])

    stills = [e for e in v.evidence if e.kind == "evidence" and e.id in datas]
    plates = [e for e in v.evidence if e.kind in ("plate", "crop") and e.id in datas]
    if plates:
        pdf.heading("Plate close-up")
        x = pdf.l_margin
        for e in plates[:3]:
            pdf.image(io.BytesIO(datas[e.id]), x=x, y=pdf.get_y(), h=18)
            x += 62
        pdf.set_y(pdf.get_y() + 20)
    pdf.add_page()
    pdf.heading("Evidence images (annotated copies; the originals are hashed below)")
    frames = [e for e in stills if e.role in ("approach", "crossing", "inside")]
    for k, e in enumerate(stills):
        label = f"{e.role} {frames.index(e) + 1}/{len(frames)}" if e in frames else (e.role or "")
        meta = {**json.loads(e.meta_json or "{}"), "role": e.role}
        try:
            data = render_annotated(datas[e.id], meta, cand, label)
        except ValueError:
            continue
        full = e.role in ("approach", "crossing", "inside")
        _image(pdf, data, PAGE_W if full else 120)

    pdf.add_page()
    pdf.heading("Files and their SHA-256")
    for c in checks:
        pdf.font("B", 8)
        pdf.cell(0, 4.5, pdf.text_ok(f"{c.name} ({c.kind}, {c.size} bytes) - "
                                     f"{'matches the signed SHA-256' if c.ok else 'DOES NOT MATCH'}"),
                 new_x="LMARGIN", new_y="NEXT")
        pdf.font(size=7.5, mono=True)
        pdf.cell(0, 4.2, c.sha256, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
