"""Search log files for PINs: no issued PIN may appear in any log line.

A PIN is six digits 1-9. It counts as found when it stands alone (not inside a longer run of
letters or digits, so a request id or a timestamp that happens to contain the digits does not
count), written as one number (``483726``) or as the guest email writes it (``483 726``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def _pattern(pins: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = sorted({rf"{p[:3]}\s?{p[3:]}" for p in pins if re.fullmatch(r"[1-9]{6}", p)})
    if not alternatives:
        return None
    return re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(alternatives) + r")(?![0-9A-Za-z])")


def log_files(sources: Iterable[Path]) -> list[Path]:
    """The files under `sources` (files, or directories searched recursively) that hold logs."""
    files: list[Path] = []
    for source in sources:
        if source.is_file():
            files.append(source)
        elif source.is_dir():
            files += sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in (".log", ".txt", ".out"))
    return files


def pins_in_logs(pins: Iterable[str], sources: Iterable[Path]) -> list[str]:
    """Every log line that carries one of `pins`, as "file:line: text"."""
    pattern = _pattern(pins)
    if pattern is None:
        return []
    found = []
    for path in log_files(sources):
        with path.open("r", encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if pattern.search(line):
                    found.append(f"{path}:{number}: {line.strip()[:300]}")
    return found
