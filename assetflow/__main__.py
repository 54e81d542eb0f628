"""``python -m assetflow`` runs the CLI."""

from assetflow.cli import main

main()
