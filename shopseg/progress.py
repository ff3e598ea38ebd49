"""Progress of a long command, for whoever runs it: `progress <done> <total> <unit>` lines on stderr.

The demo reads them as they come (devstore's Ticker); an operator running the command by hand sees
them too. One line per report, flushed at once."""
from __future__ import annotations

import sys

PREFIX = "progress "


def progress_line(done: int, total: int, unit: str) -> None:
    sys.stderr.write(f"{PREFIX}{int(done)} {int(total)} {unit}\n")
    sys.stderr.flush()


def parse(line: str) -> tuple[int, int, str] | None:
    """(done, total, unit) of a progress line; None for any other line."""
    if not line.startswith(PREFIX):
        return None
    parts = line[len(PREFIX):].split(maxsplit=2)
    try:
        return int(parts[0]), int(parts[1]), parts[2].strip() if len(parts) > 2 else ""
    except (IndexError, ValueError):
        return None
