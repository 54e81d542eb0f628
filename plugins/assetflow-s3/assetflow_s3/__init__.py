"""assetflow-s3: store assets as content-addressed Parquet objects on S3-compatible storage.

Registered through the ``assetflow`` entry-point group; choose it per asset with
``@asset(io="s3")`` or for a project with ``default_io = "s3"``, and configure it under
``[tool.assetflow.io.s3]`` (see docs/storage.md).
"""

from __future__ import annotations

from assetflow.ext import hookimpl
from assetflow_s3.backend import S3Backend

__all__ = ["S3Backend"]


@hookimpl
def assetflow_io_backends() -> list[type[S3Backend]]:
    return [S3Backend]
