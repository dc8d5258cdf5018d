"""Rendered files: stored once per content hash, recorded per debtor and kind."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.core.models import Artifact, Debtor
from kindly.core.storage import Storage, artifact_key, content_type


def save(session: Session, storage: Storage, debtor: Debtor, kind: str, data: bytes) -> Artifact:
    """Store the bytes unless the same content is stored already, and record the artifact."""
    digest = hashlib.sha256(data).hexdigest()
    key = artifact_key(debtor.campaign.slug, debtor.reference, kind)
    artifact = session.scalar(
        select(Artifact).where(Artifact.debtor_id == debtor.id, Artifact.kind == kind)
    )
    if artifact is not None and artifact.sha256 == digest and artifact.key == key:
        return artifact
    storage.put(key, data, content_type(kind))
    if artifact is None:
        artifact = Artifact(debtor_id=debtor.id, kind=kind)
        session.add(artifact)
    artifact.key = key
    artifact.sha256 = digest
    artifact.size = len(data)
    artifact.content_type = content_type(kind)
    session.flush()
    return artifact


def find(session: Session, debtor: Debtor, kind: str) -> Artifact | None:
    """The debtor's artifact of this kind, if it was rendered."""
    return session.scalar(
        select(Artifact).where(Artifact.debtor_id == debtor.id, Artifact.kind == kind)
    )
