"""``python -m genetic_sizer ...``: the command line (the Ray Jobs convention runs it this way)."""

from genetic_sizer.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
