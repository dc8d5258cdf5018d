#!/usr/bin/env bash
# Installs the Debian packages Kindly's renderers and tests need, when they are missing.
# Safe to run again: it installs nothing when everything is there.
set -euo pipefail

packages=(
  ffmpeg                 # video encoding (moviepy, ffprobe in tests)
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0  # WeasyPrint; without harfbuzz-subset it is 4-6x slower
  fonts-dejavu-core fonts-noto-core fonts-noto-color-emoji fonts-droid-fallback  # glyphs for names in any script (CJK: droid)
  poppler-utils          # pdftoppm / pdftotext: looking at letters in tests
  libzbar0               # decoding QR codes in tests
  chromium               # end-to-end tests and screenshots
  wrk                    # make bench: HTTP load from loopback
)
command -v npm >/dev/null || packages+=(npm)  # axe-core for accessibility checks
if [ "${KINDLY_NO_CHROMIUM:-}" = 1 ]; then
  packages=("${packages[@]/chromium}")
fi

missing=()
for pkg in "${packages[@]}"; do
  [ -n "$pkg" ] || continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
