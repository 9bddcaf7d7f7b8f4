"""`python -m reconciler` runs the `cloned` command."""

from reconciler.cli.main import main

main()
