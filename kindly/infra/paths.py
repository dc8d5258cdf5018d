"""Where the project's templates and assets live on disk."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # kindly/infra/paths.py -> the repository
TEMPLATES = ROOT / "templates"
ASSETS = ROOT / "assets"
FONTS = ASSETS / "fonts"
