try:
    from kompose.cli import main
except KeyboardInterrupt:  # a Ctrl-C this early: one line, as later (see kompose.cli.main)
    import sys

    sys.stderr.write("error: interrupted\n")
    raise SystemExit(130) from None

main()
