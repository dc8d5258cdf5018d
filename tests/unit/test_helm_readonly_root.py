"""Kindly runs on the read-only root filesystem the Helm chart gives every pod.

The chart sets `readOnlyRootFilesystem: true` and mounts a writable emptyDir on /tmp (and
/data). Here the same is built with a private mount namespace: the whole root filesystem
remounted read-only (the code and the virtualenv too, like the image's /app), a fresh tmpfs
on /tmp, the chart's own environment for the caches and sockets. Then the one-shot Job, a
rendering of pages, letters and videos, and gunicorn answering /healthz must all work and
log no write refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.helmchart import render

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # renders a video and starts gunicorn


def _chart_environment() -> dict[str, str]:
    """The literal environment the chart gives the web container (defaults)."""
    text = render(None)["kindly/templates/web.yaml"]
    web = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment")
    container = web["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts == {"/tmp", "/data"}
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _namespaces_allowed() -> str | None:
    """Why this machine cannot build the drill, or None."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"mount namespaces not allowed here: {probe.stderr.decode().strip()}"
    return None


def test_kindly_works_on_a_read_only_root_with_the_charts_volumes():
    reason = _namespaces_allowed()
    if reason:
        pytest.skip(reason)
    chart_env = _chart_environment()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "XDG_"))}
    env |= {name: chart_env[name] for name in ("XDG_CACHE_HOME", "XDG_RUNTIME_DIR")}
    env |= {
        "KINDLY_ENV": "development",  # SQLite and in-process jobs: no service needed here
        # /data is a second emptyDir in the pod; here a folder of the one tmpfs
        "KINDLY_DATA_DIR": "/tmp/data",
        "PYTHONDONTWRITEBYTECODE": "1",  # as the image sets it
        "PYTHONPATH": str(ROOT),
    }
    script = textwrap.dedent(
        f"""
        set -eu
        mount --make-rprivate /
        mount -o remount,bind,ro /
        mount -t tmpfs -o size=1g tmpfs /tmp
        if touch {ROOT}/.write-probe 2>/dev/null; then echo "root still writable"; exit 3; fi
        cd {ROOT}
        {sys.executable} -m kindly migrate
        {sys.executable} -m kindly demo --no-serve --count 2 --kinds site,letter,video
        ls /tmp/data/storage/campaigns/demo/debtors/*/letter.pdf >/dev/null
        ls /tmp/data/storage/campaigns/demo/debtors/*/video.mp4 >/dev/null
        {sys.executable} -m kindly serve --host 127.0.0.1 --port 18765 --workers 1 &
        server=$!
        ok=""
        for _ in $(seq 1 60); do
            if {sys.executable} -c "import urllib.request as u; \\
                print(u.urlopen('http://127.0.0.1:18765/healthz', timeout=2).read().decode())"
            then ok=1; break; fi
            sleep 1
        done
        kill -TERM $server; wait $server || true
        test -n "$ok"
        """
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "database schema at revision" in done.stdout
    assert '{"status": "ok"}' in done.stdout or '{"status":"ok"}' in done.stdout
    assert "Read-only file system" not in output, output[-4000:]
    assert not (ROOT / ".write-probe").exists()
