"""How every command-line entry point reports a mistake: one line on stderr, exit status 2.

Configuration and input errors (``ValueError`` and its ``DataFormatError``, missing files,
malformed YAML, a requested device that is absent, a non-finite loss) are the user's to fix,
and a traceback only hides the message; ``--debug`` or ``FER_DEBUG=1`` shows it. Anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

#: Exceptions that mean "the input or the configuration is wrong", not "the code is".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, FloatingPointError)
EXIT_USAGE = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    import yaml
    extra: list[type[BaseException]] = [yaml.YAMLError]
    try:
        from papermill.exceptions import PapermillExecutionError
        extra.append(PapermillExecutionError)
    except ImportError:  # the notebook extra is not installed: nothing of papermill can raise
        pass
    return USER_ERRORS + tuple(extra)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; for a notebook cell's error, that error's."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename else str(exc) or type(exc).__name__
    return " ".join(text.split())


def is_user_error(exc: BaseException) -> bool:
    """A notebook cell's error counts as the user's when its own type would."""
    ename = getattr(exc, "ename", None)
    if ename is not None:
        return ename in {t.__name__ for t in USER_ERRORS} | {"DataFormatError", "ScannerError",
                                                              "ParserError"}
    return isinstance(exc, _user_errors())


def run(main: Callable[[list[str]], int], argv: Sequence[str] | None = None, prog: str = "fer_utils") -> int:
    """``main(argv)`` with user errors turned into ``prog: error: <one line>`` and status 2.
    ``--debug`` (removed from ``argv``) or ``FER_DEBUG=1`` re-raises them instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("FER_DEBUG", "") not in ("", "0")
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    try:
        return main(args)
    except Exception as exc:  # noqa: BLE001 -- sorted below; bugs are re-raised untouched
        if debug or not is_user_error(exc):
            raise
        print(f"{prog}: error: {one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_USAGE
