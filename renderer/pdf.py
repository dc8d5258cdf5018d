"""What every PDF Kindly prints shares: the shipped fonts, named once."""

from __future__ import annotations

from kindly.infra.paths import FONTS

# The shipped fonts come first, so a PDF looks the same on every host; scripts and emoji
# DejaVu lacks fall through to fontconfig (Noto on our images).
FONT_FACES = "\n".join(
    f'@font-face {{ font-family: "Kindly Sans"; src: url("{(FONTS / name).as_uri()}"); '
    f"font-weight: {weight}; font-style: normal; }}"
    for name, weight in (("DejaVuSans.ttf", 400), ("DejaVuSans-Bold.ttf", 700))
)
"""The @font-face rules of the letter, the campaign report and the plan confirmation."""
