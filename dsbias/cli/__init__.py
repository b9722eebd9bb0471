"""The command lines: one module per script in ``ssl/``, ``probe/`` and ``tools/``, each with
``main(argv) -> int``; argparse lives only here (:mod:`.args`)."""
