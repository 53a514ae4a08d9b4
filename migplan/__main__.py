"""`python -m migplan`."""

from migplan.cli import main

main()
