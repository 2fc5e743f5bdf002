"""The one exception users see: a single line saying what is wrong and how to fix it."""


class UserError(Exception):
    """Bad input from the user. The CLI prints ``error: <message>`` and exits with code 2."""
