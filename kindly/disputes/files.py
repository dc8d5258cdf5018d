"""What a dispute's file is, judged by its content alone: a PDF, a JPEG or a PNG, each
opened for real (a PDF's header and trailer, an image verified and decoded by Pillow under a
pixel limit), never by the name or the browser's content type."""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

from kindly.errors import KindlyError

MAX_FILES = 5
"""Files one dispute may carry."""
MAX_FILE_BYTES = 10 * 1024 * 1024
"""Bytes one file may have (10 MB)."""
MAX_PIXELS = 40_000_000
"""Pixels an image may have (a 40-megapixel photo of a document): above that it is refused
as a decompression bomb before it is decoded (a PNG of 100,000 × 100,000 pixels packs into a
few hundred kilobytes and would need 30 GB to decode)."""
PDF_TAIL = 1024
"""A PDF's `startxref` and `%%EOF` lie within its last kilobyte (ISO 32000-1, 7.5.5)."""

KINDS = {
    "pdf": ("application/pdf", "pdf"),
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
}
"""The kinds accepted: content type stored, and the key's ending."""


class FileRefused(KindlyError):
    """A file (or a set of files) that cannot be taken; `code` names the debtor's message."""

    def __init__(self, code: str, name: str = ""):
        super().__init__(f"{code}: {name}" if name else code)
        self.code = code
        self.name = name


@dataclass(frozen=True)
class Upload:
    """A file as the debtor sent it."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    """A file that passed: what it really is."""

    name: str  # the debtor's name for it, cleaned for display
    data: bytes
    kind: str  # pdf | jpeg | png

    @property
    def content_type(self) -> str:
        """The MIME type its content shows."""
        return KINDS[self.kind][0]

    @property
    def ending(self) -> str:
        """The file ending the stored key gets (from the content, never the name)."""
        return KINDS[self.kind][1]


def clean_name(name: str) -> str:
    """The debtor's file name for display: the last path part, no control characters, at most
    100 characters ("document" when nothing is left)."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(
        ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C"
    )
    return name.strip()[:100] or "document"


def sniff(data: bytes) -> str | None:
    """The kind the first bytes announce (pdf, jpeg, png), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if b"%PDF-" in data[:1024]:  # readers accept a header within the first kilobyte
        return "pdf"
    return None


def _check_pdf(data: bytes, name: str) -> None:
    """A PDF opens with `%PDF-1.x` or `%PDF-2.x` and ends with `startxref <offset>` and
    `%%EOF`; anything else (a renamed program, a truncated upload) is refused."""
    start = data.find(b"%PDF-")
    if not re.match(rb"%PDF-[12]\.\d", data[start : start + 8]):
        raise FileRefused("broken", name)
    tail = data[-PDF_TAIL:]
    if b"%%EOF" not in tail or not re.search(rb"startxref\s+\d+\s+%%EOF", tail):
        raise FileRefused("broken", name)


def _check_image(data: bytes, kind: str, name: str) -> None:
    """Pillow reads the header (refused above MAX_PIXELS before any decoding), verifies the
    file, then decodes it once: a broken or truncated image is refused."""
    from PIL import Image, UnidentifiedImageError

    def opened() -> Image.Image:
        image = Image.open(io.BytesIO(data), formats=["PNG" if kind == "png" else "JPEG"])
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise FileRefused("bomb", name)
        return image

    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning (and its error at twice the limit) mean refuse
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with opened() as image:
                image.verify()  # structure and checksums, without decoding
            with opened() as image:  # verify() leaves the image unusable: open again
                image.load()
    except FileRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FileRefused("bomb", name) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise FileRefused("broken", name) from None


def check(upload: Upload) -> Checked:
    """What the file is, or FileRefused: empty, too large, not a PDF/JPEG/PNG by its content,
    an image past the pixel limit, or a file that does not open."""
    name = clean_name(upload.name)
    data = upload.data
    if not data:
        raise FileRefused("empty", name)
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused("too_large", name)
    kind = sniff(data)
    if kind is None:
        raise FileRefused("type", name)
    if kind == "pdf":
        _check_pdf(data, name)
    else:
        _check_image(data, kind, name)
    return Checked(name=name, data=data, kind=kind)


def check_all(uploads: list[Upload]) -> list[Checked]:
    """Every file checked, or FileRefused for the first that fails (more than MAX_FILES:
    refused before any is read)."""
    if len(uploads) > MAX_FILES:
        raise FileRefused("too_many")
    return [check(upload) for upload in uploads]
