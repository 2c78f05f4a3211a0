import sys

try:
    from studio.cli import main
except KeyboardInterrupt:  # Ctrl+C before the CLI could take it over: the same one line as later
    print("error: interrupted. Nothing was left half-written; run the command again.", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
