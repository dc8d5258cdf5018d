"""A watched folder or S3 prefix: statement files that arrive (by SFTP or EBICS, or synced into
a bucket) are imported once each.

Each sweep imports every settled file at the folder's (prefix's) top level in a transaction of
its own, then moves it to `done/` (imported) or `failed/` (refused, with `<name>.error.txt`
saying why). A file is settled when it has not changed for `SETTLE_SECONDS`, so one still being
written is left for the next sweep. Should a move fail after the import committed, the next
sweep finds the same bytes again: the import answers "already imported" and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from kindly.bank.entries import StatementError
from kindly.campaigns.service import find_or_fail
from kindly.infra.db import Database
from kindly.infra.storage import Storage, _client
from kindly.reconciliation.importer import ImportResult, import_statement

SETTLE_SECONDS = 5.0
"""How long a file must stay unchanged before it is read."""


@dataclass(frozen=True)
class Outcome:
    """What became of one file: its import's result, or the reason it was refused."""

    name: str
    result: ImportResult | None
    error: str | None = None


class Inbox(Protocol):
    """Where statement files arrive: a local folder or an S3 prefix."""

    def settled(self, settle: float) -> list[str]:
        """The names of the files at the top level unchanged for `settle` seconds, in order."""

    def read(self, name: str) -> bytes: ...

    def done(self, name: str) -> None:
        """Move an imported file to `done/`."""

    def failed(self, name: str, reason: str) -> None:
        """Move a refused file to `failed/`, with `<name>.error.txt` saying why."""


class FolderInbox:
    """A local folder (an SFTP drop, an EBICS client's download folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "done").mkdir(exist_ok=True)
        (folder / "failed").mkdir(exist_ok=True)

    def settled(self, settle: float) -> list[str]:
        now = time.time()
        return [
            path.name
            for path in sorted(self.folder.iterdir())
            if path.is_file() and not path.name.startswith(".") and not path.is_symlink()
            and now - path.stat().st_mtime >= settle
        ]  # fmt: skip

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def done(self, name: str) -> None:
        (self.folder / name).rename(_free(self.folder / "done" / name))

    def failed(self, name: str, reason: str) -> None:
        target = _free(self.folder / "failed" / name)
        (self.folder / name).rename(target)
        target.with_name(target.name + ".error.txt").write_text(f"{_stamp()} {reason}\n")


class S3Inbox:
    """An S3 prefix (`s3://bucket/prefix/`) that a bank connector or a sync job writes into.

    Objects appear whole once uploaded; `settle` still applies to their LastModified, so a
    multipart upload completed a moment ago is read on the next sweep like a local file. A
    "move" is a copy under `done/` or `failed/` and then the delete of the original."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an S3 prefix: {url!r} (expected s3://bucket/prefix/)")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client = _client(endpoint_url)

    def settled(self, settle: float) -> list[str]:
        now = dt.datetime.now(dt.UTC)
        names = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if not name or name.startswith("."):
                    continue
                if (now - item["LastModified"]).total_seconds() >= settle:
                    names.append(name)
        return sorted(names)

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def _move(self, name: str, folder: str) -> str:
        target = self._free(f"{self.prefix}{folder}/", name)
        self.client.copy_object(
            Bucket=self.bucket,
            Key=target,
            CopySource={"Bucket": self.bucket, "Key": self.prefix + name},
        )
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        return target

    def _free(self, folder: str, name: str) -> str:
        taken = {
            item["Key"]
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder + name.rsplit(".", 1)[0]
            )
            for item in page.get("Contents", [])
        }
        candidate, number = folder + name, 0
        stem, dot, suffix = name.rpartition(".")
        while candidate in taken:
            number += 1
            candidate = f"{folder}{stem}.{number}.{suffix}" if dot else f"{folder}{name}.{number}"
        return candidate

    def done(self, name: str) -> None:
        self._move(name, "done")

    def failed(self, name: str, reason: str) -> None:
        target = self._move(name, "failed")
        self.client.put_object(
            Bucket=self.bucket, Key=target + ".error.txt", Body=f"{_stamp()} {reason}\n".encode(),
            ContentType="text/plain; charset=utf-8",
        )  # fmt: skip


def inbox_for(where: str, endpoint_url: str | None = None) -> Inbox:
    """The inbox a `kindly bank watch` argument names: `s3://bucket/prefix/` or a folder."""
    if where.startswith("s3://"):
        return S3Inbox(where, endpoint_url)
    folder = Path(where)
    if not folder.is_dir():
        raise ValueError(f"{where}: not a folder (nor an s3://bucket/prefix/)")
    return FolderInbox(folder)


def sweep(
    db: Database,
    storage: Storage,
    folder: Path | Inbox,
    *,
    account: str | None = None,
    campaign_slug: str | None = None,
    mapping: Any = None,
    settle: float = SETTLE_SECONDS,
    by: str | None = None,
) -> list[Outcome]:
    """Import the settled files of the folder or inbox once each, oldest name first."""
    inbox = FolderInbox(folder) if isinstance(folder, Path) else folder
    if by is None:
        by = f"watch:{folder.name}" if isinstance(folder, Path) else "watch"
    outcomes = []
    for name in inbox.settled(settle):
        data = inbox.read(name)
        try:
            with db.session() as session:
                campaign = find_or_fail(session, campaign_slug) if campaign_slug else None
                result = import_statement(
                    session, storage, data, name, campaign=campaign, account=account,
                    by=by, mapping=mapping,
                )  # fmt: skip
        except (StatementError, SQLAlchemyError) as error:
            reason = str(error) if isinstance(error, StatementError) else "the database refused it"
            inbox.failed(name, reason)
            outcomes.append(Outcome(name, None, reason))
            continue
        inbox.done(name)
        outcomes.append(Outcome(name, result))
    return outcomes


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _free(target: Path) -> Path:
    """The target, or a numbered name beside it when a file of that name is already there."""
    if not target.exists():
        return target
    for number in range(1, 10_000):
        candidate = target.with_name(f"{target.stem}.{number}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)
