"""``python -m assetflow`` runs the CLI (through its entry point, as the ``assetflow`` command does)."""

from assetflow.cli_fast import main

main()
