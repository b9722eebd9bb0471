"""The one argument layer of every script: a parser with ``--config``/``--out`` and overrides anywhere on the
line, and a guard that turns a :class:`~dsbias.errors.UserError` into one line and exit code 2.

Overrides (``a.b=value``, ``group=name``) may sit before and after flags
(``probe/classify.py data=X --out Y model=Z``): the parsers use ``parse_intermixed_args``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from dsbias.config import Config, load_config
from dsbias.errors import FailedOnMain, UserError
from dsbias.log import setup_logging
from dsbias.runs import RunDir
from dsbias.typedconfig import find_preset

OVERRIDES_HELP = "overrides: a.b=value (YAML value) or group=name (configs/<group>/<name>.yaml or a file)"


def parser(prog: str, description: str, config: bool = True, run: bool = False) -> argparse.ArgumentParser:
    """A script's parser.

    Args:
        prog: The script, as users type it (``probe/classify.py``).
        description: For ``--help``.
        config: Take ``[--config FILE] [--out DIR] [overrides...]``.
        run: Also take ``--run DIR``: an existing run dir's config instead of ``--config`` and overrides.
    """
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=OVERRIDES_HELP if config else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    if run:
        p.add_argument("--run", default=None, help="an existing run dir: its config.yaml and manifest are used")
    if config:
        p.add_argument("--config", default=None, help="YAML config file")
        p.add_argument("--out", default=None, help="run directory (overrides the config's 'out')")
        p.add_argument("overrides", nargs="*", help="key=value or group=name")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse with flags and positional overrides in any order."""
    return p.parse_intermixed_args(argv)


def load(args: argparse.Namespace, default_config: str | None = None) -> Config:
    """The config an invocation describes: ``--run DIR``'s own, or ``--config`` (else ``default_config``, a
    preset name such as ``pretrain``) with the overrides and ``--out`` applied.

    Raises:
        UserError: ``--run`` together with a config or overrides, or a run dir without ``config.yaml``.
    """
    if getattr(args, "run", None) is not None:
        if args.config or args.overrides:
            raise UserError("--run DIR uses that run's config: drop --config and the overrides")
        run = RunDir.at(args.run)
        if not run.config.is_file():
            raise UserError(f"{run.config} not found: --run needs a dsbias run dir")
        return load_config(run.config)
    path = args.config
    if path is None and default_config is not None:
        path = find_preset(default_config)
    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"out={args.out}")
    return load_config(path, overrides)


def one_line(message: str) -> str:
    """A UserError's message as one line. One raised in a DataLoader worker reaches the main process wrapped by
    torch in the worker's traceback (``Caught X in DataLoader worker process 0. Original Traceback...``): its
    last line, less the exception's class name, is the message."""
    if "\nOriginal Traceback" not in message:
        return message
    return message.rstrip().splitlines()[-1].split(": ", 1)[-1]


def guarded(main: Callable[[list[str]], int | None]) -> Callable[[list[str] | None], int]:
    """Wrap a script's main: arguments default to ``sys.argv[1:]``; a :class:`UserError` prints
    ``error: <message>`` on stderr and returns 2 (``--debug`` re-raises it with its traceback). Under
    ``accelerate launch`` only the main process prints it (:class:`FailedOnMain` on the others)."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        setup_logging()
        try:
            return main(argv) or 0
        except UserError as e:
            if "--debug" in argv:
                raise
            if not isinstance(e, FailedOnMain):
                print(f"error: {one_line(str(e))}", file=sys.stderr)
            return 2

    return wrapper

