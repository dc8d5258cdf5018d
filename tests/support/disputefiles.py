"""Real files for dispute tests, made here: a PDF, a JPEG and a PNG; and bad ones: a Windows
program (PE header), a PNG decompression bomb, a zip bomb, an 11 MB PDF, a PDF that carries
the EICAR test string; and a clamd stub that speaks INSTREAM over TCP."""

from __future__ import annotations

import io
import socket
import socketserver
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def pdf(extra: bytes = b"") -> bytes:
    """A one-page PDF written by pypdf (with `extra` bytes in a comment before its trailer)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    if extra:  # a comment line just after the header: still a well-formed file
        head, rest = data.split(b"\n", 1)
        data = head + b"\n%" + extra + b"\n" + rest
    return data


def image(kind: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small photo-like image of that kind (PNG or JPEG) made by Pillow."""
    from PIL import Image

    picture = Image.new("RGB", size, (200, 120, 40))
    out = io.BytesIO()
    picture.save(out, format=kind)
    return out.getvalue()


def pe_program() -> bytes:
    """The start of a Windows program: the MZ header, its pointer to 'PE\\0\\0', some code."""
    header = bytearray(b"MZ" + b"\x90\x00" * 29)
    header += b"\x00" * (0x3C - len(header)) + struct.pack("<I", 0x80)
    header += b"\x00" * (0x80 - len(header))
    header += b"PE\x00\x00" + struct.pack("<HH", 0x14C, 3) + b"\x00" * 200
    return bytes(header) + b"This program cannot be run in DOS mode.\r\n" + b"\xcc" * 4096


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 100_000, height: int = 100_000, rows: int = 2_000) -> bytes:
    """A PNG that claims width × height one-bit pixels (10 billion: 1.25 GB to decode) in a
    few kilobytes: its first `rows` rows of zeros, compressed, are all it carries."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def zip_bomb(megabytes: int = 50) -> bytes:
    """A zip archive of `megabytes` MB of zeros that packs into a couple of hundred KB."""
    out = io.BytesIO()
    block = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(block)
    return out.getvalue()


def big_pdf(megabytes: int = 11) -> bytes:
    """A well-formed PDF padded with a comment to `megabytes` MB (10^6 bytes each)."""
    base = pdf()
    head, rest = base.split(b"\n", 1)
    padding = megabytes * 1_000_000 - len(base) - 3
    return head + b"\n%" + b"x" * padding + b"\n" + rest


class ClamdStub:
    """A TCP server on 127.0.0.1 that answers clamd's INSTREAM as clamd does: `stream: OK`,
    or `stream: Eicar-Signature FOUND` when the stream holds the EICAR string."""

    def __init__(self) -> None:
        self.streams: list[bytes] = []
        stub = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                command = b""
                while not command.endswith(b"\0"):
                    got = conn.recv(1)
                    if not got:
                        return
                    command += got
                if command != b"zINSTREAM\0":
                    conn.sendall(b"UNKNOWN COMMAND\0")
                    return
                data = b""
                while True:
                    size = struct.unpack("!L", _read(conn, 4))[0]
                    if size == 0:
                        break
                    data += _read(conn, size)
                stub.streams.append(data)
                found = EICAR in data
                conn.sendall(b"stream: Eicar-Signature FOUND\0" if found else b"stream: OK\0")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"tcp://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ClamdStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        got = conn.recv(size - len(data))
        if not got:
            raise ConnectionError("stream ended early")
        data += got
    return data


@contextmanager
def clamd_stub() -> Iterator[ClamdStub]:
    """A running clamd stub (see ClamdStub)."""
    with ClamdStub() as stub:
        yield stub
