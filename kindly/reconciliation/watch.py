"""A watched folder: statement files that arrive (by SFTP or EBICS) are imported once each.

Each sweep imports every settled file at the folder's top level in a transaction of its own,
then moves it to `done/` (imported) or `failed/` (refused, with `<name>.error.txt` saying why).
A file is settled when it has not changed for `SETTLE_SECONDS`, so one still being written is
left for the next sweep. Should a move fail after the import committed, the next sweep finds the
same bytes again: the import answers "already imported" and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from kindly.bank.entries import StatementError
from kindly.campaigns.service import find_or_fail
from kindly.infra.db import Database
from kindly.infra.storage import Storage
from kindly.reconciliation.importer import ImportResult, import_statement

SETTLE_SECONDS = 5.0
"""How long a file must stay unchanged before it is read."""


@dataclass(frozen=True)
class Outcome:
    """What became of one file: its import's result, or the reason it was refused."""

    name: str
    result: ImportResult | None
    error: str | None = None


def sweep(
    db: Database,
    storage: Storage,
    folder: Path,
    *,
    account: str | None = None,
    campaign_slug: str | None = None,
    mapping: Any = None,
    settle: float = SETTLE_SECONDS,
) -> list[Outcome]:
    """Import the settled files of `folder` once each, oldest name first."""
    done, failed = folder / "done", folder / "failed"
    done.mkdir(exist_ok=True)
    failed.mkdir(exist_ok=True)
    now = time.time()
    outcomes = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.is_symlink():
            continue
        if now - path.stat().st_mtime < settle:
            continue
        data = path.read_bytes()
        try:
            with db.session() as session:
                campaign = find_or_fail(session, campaign_slug) if campaign_slug else None
                result = import_statement(
                    session, storage, data, path.name, campaign=campaign, account=account,
                    by=f"watch:{folder.name}", mapping=mapping,
                )  # fmt: skip
        except (StatementError, SQLAlchemyError) as error:
            reason = str(error) if isinstance(error, StatementError) else "the database refused it"
            target = _free(failed / path.name)
            path.rename(target)
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            target.with_name(target.name + ".error.txt").write_text(f"{stamp} {reason}\n")
            outcomes.append(Outcome(path.name, None, reason))
            continue
        path.rename(_free(done / path.name))
        outcomes.append(Outcome(path.name, result))
    return outcomes


def _free(target: Path) -> Path:
    """The target, or a numbered name beside it when a file of that name is already there."""
    if not target.exists():
        return target
    for number in range(1, 10_000):
        candidate = target.with_name(f"{target.stem}.{number}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)
