"""The one exception type that reaches the user as a plain message instead of a traceback."""


class UserError(Exception):
    """Bad input or configuration; the message names the offending key or file."""
