"""QR codes for letters and videos."""

from __future__ import annotations

import io

import segno


def qr_png(data: str, *, scale: int = 10, border: int = 4) -> bytes:
    """A QR code as an RGB PNG (8-bit, so video and PDF tools read it without surprises)."""
    from PIL import Image

    raw = io.BytesIO()
    segno.make(data, error="m").save(raw, kind="png", scale=scale, border=border)
    raw.seek(0)
    image = Image.open(raw).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
