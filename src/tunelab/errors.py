"""The failures that reach the user as one plain line instead of a traceback."""

from __future__ import annotations

import errno
import logging
import sys
import threading

# Failed writes that are the machine's state, not a bug: a full disk or quota, a read-only or
# forbidden folder, a file-size limit, a path through a regular file.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENOTDIR}
)


class UserError(Exception):
    """Bad input or configuration; the message names the offending key or file."""


def user_message(err: BaseException | None, output_dir: str = "the output folder") -> str | None:
    """The one-line message behind `err` (also when Hydra or Lightning wrapped it); None for a bug.

    A failed write that names no file (a background writer's flush) is reported against `output_dir`.
    """
    while err is not None:
        if isinstance(err, UserError):
            return str(err)
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            where = err.filename or output_dir
            return f"{err.strerror}: {where}; check the free space and permissions there (or set paths.log_dir)"
        err = err.__cause__ or err.__context__
    return None


def quiet_write_failures() -> None:
    """Let a full or read-only disk end the run with one message instead of a traceback per writer.

    train.log's handler would print a "Logging error" traceback for every line, and TensorBoard's
    writer thread one of its own; the main thread meets the same failure and reports it.
    """
    logging.raiseExceptions = False
    default = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (isinstance(args.exc_value, OSError) and args.exc_value.errno in WRITE_ERRNOS):
            default(args)

    threading.excepthook = hook


def report(message: str) -> None:
    """Show `message` once on the terminal (stderr) and keep it in the run's log file.

    Logging it would print it a second time: Hydra's console handler echoes every record to stdout.
    """
    print(message, file=sys.stderr)
    record = logging.getLogger("tunelab").makeRecord("tunelab", logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):  # train.log / eval.log, not the console
            handler.handle(record)
