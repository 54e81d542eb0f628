"""``assetflow ui --export DIR``: the page and its data as static files, to host anywhere.

Like dbt docs: ``index.html``, ``static/`` and ``data/`` holding the same documents the
live API serves (``data/status.json``, ``data/show/<asset>.json``, ...). Asset names are
validated identifiers, so they are safe file names. Any static web server can host the
folder (``python -m http.server -d DIR``); browsers do not let a page opened from
``file://`` read its data files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from assetflow.documents import document
from assetflow.errors import AssetflowError
from assetflow.ui.app import STATIC, page_html
from assetflow.ui.project_view import ProjectView, error_payload

PER_ASSET = ("show", "why", "lineage")


def export_site(view: ProjectView, target: Path) -> dict[str, int]:
    """Write the snapshot into ``target`` (replacing an earlier export there); returns file counts."""
    target.mkdir(parents=True, exist_ok=True)
    data = target / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(STATIC, target / "static", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("index.html", "__pycache__"))
    (target / "index.html").write_text(page_html("export"), encoding="utf-8")
    counts = {"documents": 0}

    def write(relative: str, doc: dict[str, Any]) -> None:
        path = data / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, default=str), encoding="utf-8")
        counts["documents"] += 1

    for command in ("status", "list", "history"):
        write(f"{command}.json", view.get(command))
    for row in view.get("list")["assets"]:
        for command in PER_ASSET:
            try:
                doc = view.get(command, row["name"])
            except AssetflowError as exc:
                doc = document("error", error_payload(exc))
            write(f"{command}/{row['name']}.json", doc)
    return counts
