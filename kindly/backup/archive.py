"""Where a backup lives: a local folder, or a prefix in an S3 bucket (the same endpoint and
credentials Kindly's own storage uses)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from kindly.backup.manifest import BackupError
from kindly.infra.files import make_private_dir
from kindly.infra.storage import S3Storage


class Archive(Protocol):
    """What backup and restore need from the place a backup lives."""

    where: str

    def is_empty(self) -> bool: ...
    def put_bytes(self, name: str, data: bytes) -> None: ...
    def put_file(self, name: str, path: Path) -> None: ...
    def fetch(self, name: str) -> Path | None: ...
    def close(self) -> None: ...


class FolderArchive:
    """A backup as files in a folder (readable by this user only: it holds personal data)."""

    def __init__(self, root: Path):
        self.root = root
        self.where = str(root)

    def is_empty(self) -> bool:
        """Whether the folder is missing or holds nothing."""
        return not self.root.exists() or not any(self.root.iterdir())

    def _path(self, name: str) -> Path:
        path = self.root / name
        make_private_dir(path.parent)
        return path

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write one file of the backup."""
        path = self._path(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def put_file(self, name: str, path: Path) -> None:
        """Move a finished file (the dump) into the backup."""
        target = self._path(name)
        shutil.move(path, target)
        target.chmod(0o600)

    def fetch(self, name: str) -> Path | None:
        """The file itself, or None when it is not there."""
        path = self.root / name
        return path if path.is_file() else None

    def close(self) -> None:
        """Nothing to clean up."""


class S3Archive:
    """A backup under a prefix of an S3 bucket; restore downloads it to a private temporary
    folder first, so every checksum is verified before anything is written."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None):
        self.store = S3Storage(bucket, prefix, endpoint_url)
        self.where = f"s3://{bucket}/{self.store.prefix}".rstrip("/")
        self._staging: tempfile.TemporaryDirectory | None = None

    def is_empty(self) -> bool:
        """Whether nothing is stored under the prefix (the bucket is created when missing)."""
        self.store.ensure()
        return next(iter(self.store.list_keys()), None) is None

    def put_bytes(self, name: str, data: bytes) -> None:
        """Upload one file of the backup."""
        self.store.put(name, data, "application/octet-stream")

    def put_file(self, name: str, path: Path) -> None:
        """Upload a large file (the dump) in parts."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.store.client.upload_file(str(path), self.store.bucket, self.store._key(name))
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise BackupError(f"upload of {name} to {self.where} failed: {exc}") from None
        path.unlink()

    def fetch(self, name: str) -> Path | None:
        """Download one file into the staging folder; None when it is not there."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="kindly-restore-")
        target = Path(self._staging.name) / name
        make_private_dir(target.parent)
        try:
            self.store.client.download_file(self.store.bucket, self.store._key(name), str(target))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise BackupError(f"download of {name} from {self.where} failed: {exc}") from None
        except BotoCoreError as exc:
            raise BackupError(f"download of {name} from {self.where} failed: {exc}") from None
        return target

    def close(self) -> None:
        """Remove what was downloaded."""
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None


def open_archive(location: str, s3_endpoint_url: str | None) -> Archive:
    """The archive a command-line DEST or SRC names: a folder, or s3://bucket/prefix."""
    parts = urlsplit(location)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise BackupError("an s3:// backup location needs a bucket: s3://bucket/prefix")
        return S3Archive(parts.netloc, parts.path, s3_endpoint_url)
    if parts.scheme == "file":
        return FolderArchive(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # a Windows drive letter is no scheme
        raise BackupError(f"unsupported backup location {location!r}: a folder or s3://")
    return FolderArchive(Path(location).expanduser())
