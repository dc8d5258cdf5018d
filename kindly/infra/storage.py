"""Artifact storage: a local folder or an S3 bucket; objects are always private."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from kindly.errors import ConfigError, ServiceUnavailable
from kindly.infra.files import make_private_dir, write_atomically

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
UPLOAD_BACKOFF_SECONDS = 1.0
"""The first wait before an upload is tried again; it doubles each time (with jitter)."""
UPLOAD_BACKOFF_MAX_SECONDS = 8.0
KINDS = {
    "site": ("site.html", "text/html; charset=utf-8"),
    "letter": ("letter.pdf", "application/pdf"),
    "video": ("video.mp4", "video/mp4"),
    "poster": ("poster.jpg", "image/jpeg"),
    "captions": ("captions.vtt", "text/vtt; charset=utf-8"),
}


def artifact_key(campaign_slug: str, debtor_id: int, kind: str) -> str:
    """The storage key of one artifact: campaigns/<slug>/debtors/<debtor id>/<file>."""
    # The debtor's id, never the reference: references hold '/', spaces and any letter, and
    # differ only in case (one folder on a case-insensitive disk), so any mapping onto key
    # characters merges two debtors or outgrows the column. The extra `debtors/` level keeps
    # these keys apart from the old ones (campaigns/<slug>/<reference>/<file>).
    filename, _ = KINDS[kind]
    return f"campaigns/{campaign_slug}/debtors/{int(debtor_id)}/{filename}"


def legacy_artifact_key(campaign_slug: str, reference: str, kind: str) -> str:
    """Where Kindly before migration 0980 stored an artifact (two references could share it)."""
    filename, _ = KINDS[kind]
    safe_reference = re.sub(r"[^A-Za-z0-9._-]", "_", reference)
    return f"campaigns/{campaign_slug}/{safe_reference}/{filename}"


def is_debtor_key(key: str, debtor_id: int) -> bool:
    """Whether the key lies in this debtor's own folder (as `artifact_key` names it)."""
    parts = key.split("/")
    return len(parts) == 5 and parts[0] == "campaigns" and parts[2:4] == ["debtors", str(debtor_id)]


def content_type(kind: str) -> str:
    """The MIME type stored with an artifact of this kind."""
    return KINDS[kind][1]


class StorageError(ServiceUnavailable):
    """Storage failed in a way a person should hear about in one line."""


class Storage(Protocol):
    """What the rest of Kindly needs from a storage backend."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def presigned_url(self, key: str, expires: int = 300) -> str | None: ...
    def local_path(self, key: str) -> Path | None: ...
    def ensure(self) -> None: ...
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str = "") -> Iterator[str]: ...


def _check_key(key: str) -> str:
    if not KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """Objects as files under one folder (the embedded default)."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def ensure(self) -> None:
        """Create the folder."""
        make_private_dir(self.root)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write atomically: readers see the old object or the new one, never half."""
        write_atomically(self._path(key), data)

    def get(self, key: str) -> bytes:
        """The object's bytes; KeyError when it does not exist."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return self._path(key).is_file()

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        """Local objects are streamed by the front, never linked."""
        return None

    def delete(self, key: str) -> None:
        """Remove the object (nothing happens when it is not there)."""
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        """The file behind the key, for efficient range requests."""
        path = self._path(key)
        return path if path.is_file() else None

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with `prefix`, in sorted order (a backup's listing)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            # write_atomically's half-written files are not objects
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(".tmp-"):
                yield key


class S3Storage:
    """Objects in an S3 bucket (AWS, MinIO, Ceph, R2) under an optional prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        public_endpoint_url: str | None = None,
        upload_attempts: int = 4,
    ):
        self.bucket = bucket
        self.upload_attempts = max(1, upload_attempts)
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client = _client(endpoint_url)
        # Browsers follow presigned links: sign them for the host browsers reach, which in
        # a compose network differs from the one the workers use (http://minio:9000).
        public = public_endpoint_url or endpoint_url
        self.public_client = self.client if public == endpoint_url else _client(public)

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: Exception, action: str) -> StorageError:
        from botocore.exceptions import ClientError, NoCredentialsError

        where = f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        if isinstance(exc, NoCredentialsError):
            return StorageError(f"S3 {action} failed on {where}: no credentials configured")
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "error")
            return StorageError(f"S3 {action} failed on {where}: {code}")
        return StorageError(f"S3 unreachable ({where}): {type(exc).__name__}")

    def ensure(self) -> None:
        """Check the bucket is reachable; create it when it does not exist yet."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise self._fail(exc, "bucket check") from None
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except (BotoCoreError, ClientError) as create_exc:
                raise self._fail(create_exc, "bucket creation") from None
        except BotoCoreError as exc:
            raise self._fail(exc, "bucket check") from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload one private object, riding out a short outage.

        botocore retries each request three times within a fraction of a second; when S3
        still cannot be reached, the upload is tried again `upload_attempts` times in all,
        waiting about 1, 2, 4 s (at most 8 s) in between, before the job fails and RQ's
        retries (10 s, 60 s, 300 s) take over. A single PUT is atomic: a reader sees the
        old object or the new one, never part of one.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(self.upload_attempts):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
                )
                return
            except ClientError as exc:  # S3 answered: botocore already retried its 5xx
                raise self._fail(exc, "upload") from None
            except BotoCoreError as exc:  # refused, reset, timed out: S3 may be back soon
                if attempt + 1 >= self.upload_attempts:
                    raise self._fail(exc, "upload") from None
                delay = min(UPLOAD_BACKOFF_SECONDS * 2**attempt, UPLOAD_BACKOFF_MAX_SECONDS)
                time.sleep(delay * random.uniform(0.5, 1.0))

    def get(self, key: str) -> bytes:
        """Download one object; KeyError when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise self._fail(exc, "download") from None
        except BotoCoreError as exc:
            raise self._fail(exc, "download") from None

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(exc, "lookup") from None
        except BotoCoreError as exc:
            raise self._fail(exc, "lookup") from None

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        """A short-lived GET URL signed with SigV4."""
        return self.public_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires
        )

    def delete(self, key: str) -> None:
        """Remove the object (S3 answers success when it is not there)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, "delete") from None

    def local_path(self, key: str) -> Path | None:
        """S3 objects have no local file."""
        return None

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key under this store's prefix that starts with `prefix`, sorted
        (none when the bucket does not exist yet)."""
        from botocore.exceptions import BotoCoreError, ClientError

        base = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(base) :]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return  # a bucket not made yet holds nothing
            raise self._fail(exc, "listing") from None
        except BotoCoreError as exc:
            raise self._fail(exc, "listing") from None


def _client(endpoint_url: str | None):
    """A boto3 S3 client with SigV4, bounded retries and timeouts."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": "path"} if endpoint_url else {},
        ),
    )


def open_storage(
    storage_url: str,
    s3_endpoint_url: str | None = None,
    s3_public_endpoint_url: str | None = None,
    *,
    s3_upload_attempts: int = 4,
) -> Storage:
    """The backend a KINDLY_STORAGE_URL names."""
    parts = urlsplit(storage_url)
    if parts.scheme == "file":
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError("KINDLY_STORAGE_URL s3:// needs a bucket: s3://bucket/prefix")
        return S3Storage(
            parts.netloc, parts.path, s3_endpoint_url, s3_public_endpoint_url, s3_upload_attempts
        )
    raise ConfigError(f"unsupported storage URL scheme {parts.scheme!r}")
