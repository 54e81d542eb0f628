"""Where each asset's captured output is kept: ``<state folder>/logs/<run id>/<asset>.log``.

The coordinator writes one file per run and asset that printed or logged anything (all
attempts of a retried asset, each under a header); ``assetflow logs``, ``history --logs``
and the page read them; ``gc`` collects them with the runs it forgets. A log is plain
text for people, not state: losing one (a full disk) never fails or voids an asset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from assetflow.names import NAME_PATTERN  # an asset name: a safe file name

LOGS_FOLDER = "logs"
_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class AssetLog:
    asset: str
    run_id: str
    path: Path
    text: str


def log_path(state_path: Path, run_id: str, asset: str) -> Path:
    """Where the log is; ValueError for a run id or asset name that could leave the logs folder."""
    if not _SAFE_RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise ValueError(f"not a run id: {run_id!r}")
    if not NAME_PATTERN.fullmatch(asset):
        raise ValueError(f"not an asset name: {asset!r}")
    return state_path / LOGS_FOLDER / run_id / f"{asset}.log"


def write_log(state_path: Path, run_id: str, asset: str, text: str, append: bool = False) -> Path | None:
    """Keep ``text`` as the asset's log of this run (atomically, unless appended to what the run
    kept already, e.g. another partition's); None if there is nothing to keep or no room."""
    if not text:
        return None
    path = log_path(state_path, run_id, asset)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with path.open("a", encoding="utf-8", errors="replace") as handle:
                handle.write(text)
            return path
        temporary.write_text(text, encoding="utf-8", errors="replace")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    return path


def read_log(state_path: Path, run_id: str, asset: str) -> AssetLog | None:
    """The asset's log of one run, or None if it printed nothing then (or the run is unknown)."""
    try:
        path = log_path(state_path, run_id, asset)
        return AssetLog(asset, run_id, path, path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None


def runs_with_logs(state_path: Path, asset: str) -> list[str]:
    """The runs that kept a log of ``asset``, newest first (run ids start with their start time)."""
    if not NAME_PATTERN.fullmatch(asset):
        return []
    folder = state_path / LOGS_FOLDER
    found: list[tuple[int, str]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                found.append((os.stat(os.path.join(entry.path, f"{asset}.log")).st_mtime_ns, entry.name))
    return [run_id for _, run_id in sorted(found, key=lambda f: (f[1][:15], f[0]), reverse=True)]


def latest_log(state_path: Path, asset: str, partition: str | None = None) -> AssetLog | None:
    """The newest log of ``asset``, from whichever run last captured output of it (of ``partition``, if given)."""
    for run_id in runs_with_logs(state_path, asset):
        found = read_log(state_path, run_id, asset)
        if found is not None and partition is not None:
            found = partition_log(found, partition)
        if found is not None:
            return found
    return None


PARTITION_HEADER = "--- partition {} ---\n"  # the partitions of an asset share its log of a run, each under one


def partition_log(log: AssetLog, key: str) -> AssetLog | None:
    """What one partition of the asset printed in that run (its sections of the shared log), or None."""
    header = PARTITION_HEADER.format(key)
    sections = [part for part in re.split(r"(?m)^(?=--- partition .* ---$)", log.text) if part.startswith(header)]
    if not sections:
        return None
    return dataclasses.replace(log, text="".join(section[len(header):] for section in sections))


def collect_logs(state_path: Path, keep_runs: int, known_runs: Sequence[str], dry_run: bool = False) -> int:
    """Delete the logs of all but the ``keep_runs`` newest runs of each asset; returns files deleted.

    ``known_runs`` are the state's runs, newest first; logs of runs it no longer knows go too.
    """
    folder = state_path / LOGS_FOLDER
    rank = {run_id: index for index, run_id in enumerate(known_runs)}
    known = set(rank)
    by_asset: dict[str, list[tuple[str, Path]]] = {}
    try:
        run_folders = sorted((e for e in os.scandir(folder) if e.is_dir()),
                             key=lambda e: (rank.get(e.name, len(rank)), e.name))
    except OSError:
        return 0
    doomed: list[Path] = []
    for entry in run_folders:
        with contextlib.suppress(OSError):
            for log in os.scandir(entry.path):
                if not log.name.endswith(".log"):
                    continue
                if entry.name not in known:
                    doomed.append(Path(log.path))
                else:
                    by_asset.setdefault(log.name, []).append((entry.name, Path(log.path)))
    for logs in by_asset.values():
        doomed += [path for _, path in logs[keep_runs:]]
    if dry_run:
        return len(doomed)
    for path in doomed:
        with contextlib.suppress(OSError):
            path.unlink()
    for entry in run_folders:  # a run folder with no log left goes too
        with contextlib.suppress(OSError):
            if not any(name.endswith(".log") for name in os.listdir(entry.path)):
                shutil.rmtree(entry.path)
    return len(doomed)
