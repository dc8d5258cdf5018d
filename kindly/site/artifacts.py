"""Rendered files: stored once per content hash, recorded per debtor and kind."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

import renderer
from kindly.campaigns.models import Campaign, Debtor
from kindly.infra.db import utcnow
from kindly.infra.paths import ROOT, TEMPLATES
from kindly.infra.storage import (
    KINDS,
    Storage,
    StorageError,
    artifact_key,
    content_type,
    legacy_artifact_key,
)
from kindly.site.models import Artifact
from renderer.view import DebtorView

TEMPLATE_FOLDERS = {"site": ("site", "claims"), "letter": ("letter", "claims"), "video": ("video",)}
"""The template folders each kind is rendered from; the renderer's code counts for every kind."""
UNDATED = frozenset({"letter_date"})
"""View fields that say when, not what: a letter made yesterday is not stale today."""
MADE_WITH = {"poster": "video", "captions": "video"}
"""Artifacts made by another kind's job: they are as stale or as fresh as it is."""
RENDERED = ("site", "letter", "video")
"""The kinds a render job is asked for."""
RETIRED = "kindly_retired_keys"
"""session.info entry: objects to delete once the rows naming their successors are committed."""

log = logging.getLogger(__name__)


def renderer_folders(kind: str) -> list[Path]:
    """The folders this kind is rendered from: its template folders and the renderer package."""
    folders = [TEMPLATES / name for name in TEMPLATE_FOLDERS.get(kind, ())]
    folders.append(Path(renderer.__file__).resolve().parent)  # wherever the package lives
    return folders


def tree_version(folders: Iterable[Path], root: Path) -> str:
    """A hash of every file under `folders`: its path relative to `root`, and its bytes."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix not in (".pyc", ".mo"):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=8)
def renderer_version(kind: str) -> str:
    """A hash of the templates and renderer code behind this kind (read once per process)."""
    return tree_version(renderer_folders(kind), ROOT)


@lru_cache(maxsize=8)
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_for(view: DebtorView, kind: str, **extra: object) -> str:
    """The fingerprint of what an artifact of this kind is rendered from: the debtor's view
    (but not today's date), `extra` values, the logo, the templates and the renderer."""
    facts = {k: v for k, v in dataclasses.asdict(view).items() if k not in UNDATED}
    if view.logo:
        facts["logo"] = _digest(view.logo)  # the picture itself is long: its digest stands in
    text = json.dumps([kind, renderer_version(kind), facts, extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def site_inputs(
    view: DebtorView,
    *,
    has_video: bool,
    has_letter: bool,
    overrides: dict | None,
    online: bool,
) -> str:
    """The fingerprint of a microsite page: everything `render_site` is given (the logo is
    not on the page), the site templates and the renderer code."""
    return inputs_for(
        dataclasses.replace(view, logo=""), "site", has_video=has_video, has_letter=has_letter,
        overrides=overrides or None, online=online,
    )  # fmt: skip


def save(
    session: Session,
    storage: Storage,
    debtor: Debtor,
    kind: str,
    data: bytes,
    *,
    inputs: str | None = None,
    known: dict[str, Artifact] | None = None,
) -> Artifact:
    """Store the bytes unless the same content is stored already, and record the artifact
    (with `inputs`, the fingerprint of what it was rendered from). `known` is the debtor's
    artifacts as `by_kind` read them: it saves a query, and is kept up to date."""
    digest = hashlib.sha256(data).hexdigest()
    key = artifact_key(debtor.campaign.slug, debtor.id, kind)
    artifact = known.get(kind) if known is not None else find(session, debtor, kind)
    made_by = version(kind)
    if artifact is not None and artifact.sha256 == digest and artifact.key == key:
        if inputs is not None and artifact.inputs != inputs:
            artifact.inputs = inputs
        artifact.renderer = made_by
        session.flush()
        return artifact
    storage.put(key, data, content_type(kind))
    if artifact is None:
        artifact = Artifact(debtor_id=debtor.id, kind=kind)
        session.add(artifact)
    elif artifact.key and artifact.key != key:
        _retire(session, storage, artifact.key)
    artifact.key = key
    artifact.sha256 = digest
    artifact.size = len(data)
    artifact.content_type = content_type(kind)
    artifact.inputs = inputs
    artifact.renderer = made_by
    session.flush()
    if known is not None:
        known[kind] = artifact
    return artifact


def relocate(session: Session, storage: Storage, debtor: Debtor, known: dict[str, Artifact]):
    """Move artifacts stored under another key (the old reference-named folders) into the
    debtor's own folder; a copy, no rendering."""
    # An object that is gone, or whose bytes are not the recorded ones (another debtor's, where
    # old keys collided), is dropped with its row, so it is rendered anew.
    for kind, artifact in list(known.items()):
        key = artifact_key(debtor.campaign.slug, debtor.id, kind)
        if artifact.key == key:
            continue
        try:
            data = storage.get(artifact.key)
        except KeyError:
            session.refresh(artifact)  # the page's and the video's jobs may both be moving it
            if artifact.key == key:
                continue
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != artifact.sha256:
            session.delete(artifact)
            session.flush()
            del known[kind]
            continue
        save(session, storage, debtor, kind, data, inputs=artifact.inputs, known=known)


def forget_all(session: Session, storage: Storage, debtor: Debtor) -> int:
    """Delete every stored file of the debtor and its rows (an erasure); returns the rows."""
    # Beside the recorded keys: the debtor's folder (a render rolled back after storing) and
    # the old reference-named keys no other row uses (what a collision under the old scheme left).
    rows = list(session.scalars(select(Artifact).where(Artifact.debtor_id == debtor.id)))
    keys = {artifact.key for artifact in rows}
    for artifact in rows:
        session.delete(artifact)
    session.flush()
    slug = debtor.campaign.slug
    keys.update(artifact_key(slug, debtor.id, kind) for kind in KINDS)
    legacy = {legacy_artifact_key(slug, debtor.reference, kind) for kind in KINDS}
    used = set(session.scalars(select(Artifact.key).where(Artifact.key.in_(legacy))))
    for key in sorted(keys | (legacy - used)):
        storage.delete(key)
    return len(rows)


def _retire(session: Session, storage: Storage, key: str) -> None:
    """Delete the object at `key` after the next commit (a rollback keeps the row naming it)."""
    retired = session.info.get(RETIRED)
    if retired is None:
        retired = session.info[RETIRED] = []
        event.listen(session, "after_commit", _delete_retired)
        event.listen(session, "after_rollback", _keep_retired)
    retired.append((storage, key))


def _delete_retired(session: Session) -> None:
    retired, session.info[RETIRED] = session.info.get(RETIRED, []), []
    for storage, key in retired:
        try:
            storage.delete(key)
        except StorageError as exc:  # a leftover copy of the debtor's own file; erasure sweeps it
            log.warning("could not delete a moved artifact's old object: %s", exc)


def _keep_retired(session: Session) -> None:
    session.info[RETIRED] = []


def by_kind(session: Session, debtor: Debtor) -> dict[str, Artifact]:
    """Every artifact of the debtor, by kind, in one query."""
    rows = session.scalars(select(Artifact).where(Artifact.debtor_id == debtor.id))
    return {artifact.kind: artifact for artifact in rows}


def find(session: Session, debtor: Debtor, kind: str) -> Artifact | None:
    """The debtor's artifact of this kind, if it was rendered."""
    return session.scalar(
        select(Artifact).where(Artifact.debtor_id == debtor.id, Artifact.kind == kind)
    )


# ---- staleness ---------------------------------------------------------------------------------


def version(kind: str) -> str:
    """The templates' and renderer's hash an artifact of this kind is made with now."""
    return renderer_version(MADE_WITH.get(kind, kind))


def companions(kinds: Iterable[str]) -> set[str]:
    """The kinds with the artifacts made by their jobs (a video's poster and captions)."""
    wanted = set(kinds)
    return wanted | {made for made, by in MADE_WITH.items() if by in wanted}


UNRENDERED_SETTINGS = frozenset(
    {"identity_check", "link_days", "promise_max_days", "retention_days", "payments"}
)
"""Campaign settings no page, letter or video is made of (they act when a link is opened)."""


def affected_kinds(changed: Iterable[str]) -> tuple[str, ...]:
    """The kinds a change of these campaign fields and settings outdates: the page alone for
    text overrides, every kind for what the debtor's view holds, none for the rest."""
    keys = set(changed) - UNRENDERED_SETTINGS
    if not keys:
        return ()
    return ("site",) if keys == {"texts"} else RENDERED


def mark_stale(
    session: Session,
    campaign_id: int,
    reason: str,
    debtor_ids: Iterable[int] | None = None,
    *,
    kinds: Iterable[str] = RENDERED,
) -> int:
    """Mark the campaign's stored artifacts of these kinds (of every debtor, or of
    `debtor_ids`) stale because of `reason` ("rules", "texts", "settings", "creditor", …);
    returns how many were marked.

    Call it in the transaction that changes what the artifacts are made of. Until a render
    job rebuilds them, the link serves the page built live from the current state, and the
    cockpit counts them as stale. The mark holds the time of the latest change, so a job that
    read the state before it does not clear it.
    """
    debtors = select(Debtor.id).where(Debtor.campaign_id == campaign_id)
    if debtor_ids is not None:
        debtors = debtors.where(Debtor.id.in_(list(debtor_ids)))
    return _mark(session, debtors, reason, kinds)


def mark_creditor_stale(session: Session, creditor: str, reason: str = "creditor") -> int:
    """mark_stale for every artifact naming this creditor, in any campaign: the debtor's own
    creditor, or the campaign's where the debtor names none (as the debtor's view picks it).
    For a change to the creditor's profile (address, contact, bank details, logo)."""
    own = func.coalesce(func.nullif(Debtor.creditor, ""), Campaign.creditor)
    debtors = (
        select(Debtor.id).join(Campaign, Campaign.id == Debtor.campaign_id).where(own == creditor)
    )
    return _mark(session, debtors, reason, RENDERED)


def _mark(session: Session, debtors, reason: str, kinds: Iterable[str]) -> int:
    """Mark the artifacts of these kinds of the selected debtors stale, now."""
    kinds = companions(kinds)
    if not kinds:
        return 0
    result = session.execute(
        update(Artifact)
        .where(Artifact.debtor_id.in_(debtors), Artifact.kind.in_(kinds))
        .values(stale_at=utcnow(), stale_reason=reason[:64])
        .execution_options(synchronize_session="fetch")  # loaded rows show the mark
    )
    return result.rowcount or 0


def mark_fresh(session: Session, debtor: Debtor, kinds: Iterable[str], began: dt.datetime) -> None:
    """After a render job checked or rebuilt these kinds from the state it read at `began`:
    clear the marks made before then, record the renderer and when the rebuild finished."""
    now = utcnow()
    for kind in companions(kinds):
        session.execute(
            update(Artifact)
            .where(
                Artifact.debtor_id == debtor.id,
                Artifact.kind == kind,
                or_(Artifact.stale_at.is_(None), Artifact.stale_at <= began),
            )
            .values(stale_at=None, stale_reason=None, rendered_at=now, renderer=version(kind))
            .execution_options(synchronize_session="fetch")
        )


def is_current(artifact: Artifact | None, inputs: str) -> bool:
    """Whether a stored artifact may be served as it is: not marked stale, rendered from
    these inputs (which hold the templates' and renderer's hash)."""
    return artifact is not None and artifact.stale_at is None and artifact.inputs == inputs
