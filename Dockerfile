# Kindly: one image, several roles.
#   web:          the default command (gunicorn on port 5000)
#   worker:       kindly worker render send default
#   video worker: kindly worker video
# See compose.yaml for the whole stack and docs/deploy.md for running it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    KINDLY_DATA_DIR=/data

# What the renderers need at run time (scripts/system-deps.sh lists the same ones, plus the
# test-only tools that do not belong here: chromium, poppler-utils, libzbar0).
# - ffmpeg: the video renderer runs ffmpeg directly (renderer/video_encode.py): this one, or
#   the one bundled in the imageio-ffmpeg wheel; it brings ffprobe for inspecting output
# - pango + harfbuzz-subset: WeasyPrint (without harfbuzz-subset letters render 4-6x slower)
# - fonts: glyph fallback for names in any script; fontconfig so the font cache is built here,
#   once, instead of in every process at start-up
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ffmpeg \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
      fontconfig fonts-dejavu-core fonts-noto-core fonts-noto-color-emoji fonts-droid-fallback \
 && fc-cache -f \
 && rm -rf /var/lib/apt/lists/*

# `kindly backup` and `kindly restore` run pg_dump, pg_restore and psql of the server's major
# version (pg_dump refuses a server newer than itself; compose.yaml runs postgres:16): PGDG's
# client packages, set up with the script and key Debian's postgresql-common ships.
ARG POSTGRES_CLIENT=16
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
 && apt-get install -y --no-install-recommends postgresql-client-${POSTGRES_CLIENT} \
 && rm -rf /var/lib/apt/lists/*

# The unprivileged user every process runs as; a fixed uid/gid keeps volume ownership stable.
RUN groupadd --system --gid 10001 kindly \
 && useradd --system --no-log-init --uid 10001 --gid kindly --home-dir /home/kindly --create-home \
      --shell /usr/sbin/nologin kindly \
 && install -d -o kindly -g kindly -m 0700 /data

WORKDIR /app

# Python dependencies first, so a change to the source does not reinstall them.
# Only the runtime dependencies named in pyproject.toml are installed (requirements.lock also
# pins the test tools: pytest, moto, playwright, ruff), each at the version the lock pins;
# the build then fails if anything got in that the lock does not pin.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" > /tmp/runtime.txt \
 && pip install -c requirements.lock -r /tmp/runtime.txt \
 && rm /tmp/runtime.txt \
 && python -c "import importlib.metadata as md, re; norm = lambda s: re.sub('[-_.]+', '-', s).lower(); lock = {norm(a): b.strip() for a, b in (line.split('==', 1) for line in open('requirements.lock') if '==' in line)}; loose = sorted(f'{d.name}=={d.version}' for d in md.distributions() if norm(d.name) not in ('pip', 'setuptools', 'wheel') and lock.get(norm(d.name)) != d.version); assert not loose, f'installed but not pinned by requirements.lock: {loose}'"

# The source tree, owned by root and read-only for kindly. Kindly reads templates/ and
# assets/ from the repository root (kindly/infra/paths.py), so it is installed in place
# (editable) and /app keeps the repository's layout.
COPY . .
RUN pip install --no-deps -e . \
 && python -c "import web, workers, renderer; from kindly.infra.paths import ASSETS, TEMPLATES; assert str(TEMPLATES) == '/app/templates' and TEMPLATES.is_dir() and ASSETS.is_dir(), (TEMPLATES, ASSETS)" \
 && kindly --help > /dev/null

# Numeric so that orchestrators can check "runs as non-root" (10001 is kindly).
USER 10001:10001

# The data folder: the SQLite database, local storage and the generated secret key when
# those defaults are used. With PostgreSQL, S3 and KINDLY_SECRET_KEY nothing lives here.
VOLUME ["/data"]

EXPOSE 5000

# Only meaningful for the web role; compose.yaml switches it off for the workers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4).status == 200 else 1)"]

# `kindly serve` brings the database schema up to date and checks the storage (creating a
# missing bucket) before gunicorn starts.
CMD ["kindly", "serve", "--host", "0.0.0.0", "--port", "5000"]
