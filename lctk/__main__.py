"""Run the CLI as `python -m lctk`."""

from lctk.cli import main

main()
