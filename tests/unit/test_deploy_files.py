"""The deployment files keep their promises: no default secrets, least privilege, whole image."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|ROOT_USER|ACCESS_KEY")
OPTIONAL = {"KINDLY_STRIPE_SECRET_KEY", "KINDLY_STRIPE_WEBHOOK_SECRET"}
"""Secrets that may stay empty: without them Kindly takes no card payments."""


def _variables(text: str) -> list[tuple[str, str]]:
    """Every ${NAME<op>…} in a text as (name, operator): '' for a bare ${NAME}."""
    return re.findall(r"\$\{([A-Z0-9_]+)(:\?|:-|\?|-)?", text)


def test_every_secret_in_compose_is_required_without_a_default():
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    secrets = [(n, op) for n, op in _variables(text) if SECRET_NAME.search(n) and n not in OPTIONAL]
    assert {n for n, _ in secrets} >= {
        "KINDLY_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD", "KINDLY_S3_ACCESS_KEY", "KINDLY_S3_SECRET_KEY",
    }  # fmt: skip
    assert [(n, op) for n, op in secrets if op != ":?"] == []


def test_compose_requires_a_base_url_and_a_payment_mode():
    env = COMPOSE["x-kindly-env"]
    assert env["KINDLY_BASE_URL"].startswith("${KINDLY_BASE_URL:?")
    assert env["KINDLY_PAYMENTS"].startswith("${KINDLY_PAYMENTS:?")


def test_kindly_uses_its_own_bucket_scoped_s3_user_not_minio_root():
    env = COMPOSE["x-kindly-env"]
    assert "MINIO_ROOT" not in env["AWS_ACCESS_KEY_ID"] + env["AWS_SECRET_ACCESS_KEY"]
    setup = COMPOSE["services"]["minio-setup"]
    script = "\n".join(setup["command"])
    assert '"arn:aws:s3:::kindly/*"' in script and "s3:*" not in script
    assert "mc admin user add" in script and "mc admin policy attach" in script
    for role in ("web", "worker", "video-worker"):
        after = COMPOSE["services"][role]["depends_on"]
        assert after["minio-setup"]["condition"] == "service_completed_successfully", role


def test_only_the_s3_api_is_published_and_only_on_loopback():
    published = [
        (name, port)
        for name, service in COMPOSE["services"].items()
        for port in service.get("ports", [])
    ]
    assert ("minio", "127.0.0.1:9000:9000") in published
    assert not any(port.endswith(":9001") for _, port in published)  # no MinIO console
    for name, port in published:
        assert port.startswith(("127.0.0.1:", "${KINDLY_BIND:-127.0.0.1}")), (name, port)


def test_redis_asks_for_a_password():
    command = COMPOSE["services"]["redis"]["command"]
    assert "--requirepass" in command
    assert COMPOSE["x-kindly-env"]["KINDLY_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")


def _ignored(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether Docker leaves `path` out of the build context (last matching rule wins; a rule
    that matches a folder matches everything in it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negated, pattern in rules:
        regex = fnmatch.translate(pattern).replace(".*.*/", "(?:.*/)?")
        if any(re.match(regex, prefix) for prefix in prefixes):
            result = not negated
    return result


def test_the_image_context_holds_what_the_running_app_reads():
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").lstrip("/")))
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    kept = {path for path in tracked if not _ignored(path, rules)}
    assert "web/api/openapi.json" in kept  # served at /api/v1/openapi.json
    code = ("kindly/", "renderer/", "web/", "workers/", "templates/", "assets/")
    assert {p for p in tracked if p.startswith(code)} <= kept
    assert not {p for p in kept if p.startswith(("tests/", "bench/", "docs/"))}
