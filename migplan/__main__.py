"""`python -m migplan`."""

from migplan.cli import main

# a fleet's worker processes import this module again: only the parent runs main
if __name__ == "__main__":
    main()
