"""`python -m kindly` is the `kindly` command."""

from kindly.cli import main

main()
