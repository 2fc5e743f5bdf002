"""The one exception users see: a single line saying what is wrong and how to fix it."""


class UserError(Exception):
    """Bad input from the user. The CLI prints ``error: <message>`` and exits with code 2."""


class TrainingFailed(RuntimeError):
    """A run that cannot give a usable model (diverged loss, collapsed predictions, a useless teacher).

    Inside a search this fails (or prunes) the one trial, with the message as its reason; from the
    CLI it is one ``error:`` line and exit code 2, like a :class:`UserError`.
    """


class UselessTeacher(TrainingFailed):
    """The teacher is no better than chance: every distilling trial is pruned, the others go on."""
