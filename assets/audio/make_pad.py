"""Synthesise kindly-pad.flac: a quiet 15 s pad (C – Am – F – G), our own work, CC0.

Run: .venv/bin/python assets/audio/make_pad.py  (needs numpy and ffmpeg)
"""

import subprocess
import wave
from pathlib import Path

import numpy as np

RATE = 44100
CHORD_SECONDS = 3.75
CHORDS = [  # MIDI notes: a soft voicing around middle C
    (48, 60, 64, 67),  # C
    (45, 57, 60, 64),  # Am
    (41, 57, 60, 65),  # F
    (43, 55, 59, 62),  # G
]


def tone(midi: int, seconds: float) -> np.ndarray:
    """A warm note: fundamental plus two quiet overtones, slightly detuned for width."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave_ = sum(
        amp * (np.sin(2 * np.pi * f * k * t) + np.sin(2 * np.pi * f * k * 1.003 * t)) / 2
        for k, amp in ((1, 1.0), (2, 0.25), (3, 0.08))
    )
    return wave_


def main() -> None:
    """Write the FLAC beside this script."""
    overlap = 0.6
    total = np.zeros(int((CHORD_SECONDS * len(CHORDS) + overlap) * RATE))
    for i, chord in enumerate(CHORDS):
        seconds = CHORD_SECONDS + overlap
        n = int(seconds * RATE)
        env = np.minimum(1.0, np.arange(n) / (0.8 * RATE)) * np.minimum(
            1.0, (n - np.arange(n)) / (overlap * RATE)
        )
        notes = sum(tone(m, seconds) for m in chord) * env
        start = int(i * CHORD_SECONDS * RATE)
        total[start : start + n] += notes
    total = total[: int(CHORD_SECONDS * len(CHORDS) * RATE)]
    # the loop point: fade the last 0.6 s into the first so a looped track does not click
    tail = int(overlap * RATE)
    total[:tail] = total[:tail] * np.linspace(0, 1, tail) + total[-tail:] * np.linspace(1, 0, tail)
    total = total / np.abs(total).max() * 0.35
    pcm = (total * 32767).astype("<i2")
    here = Path(__file__).resolve().parent
    wav = here / "kindly-pad.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    flac = here / "kindly-pad.flac"
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "flac", str(flac)]
    subprocess.run(cmd, check=True)
    wav.unlink()


if __name__ == "__main__":
    main()
