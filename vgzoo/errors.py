"""User-facing errors: one line that says what was wrong and how to fix it."""
import difflib


class VgzooError(ValueError):
    """A mistake in the user's input or environment, not a bug.

    The command line prints the message alone and exits with status 2.
    """


class TrainingDiverged(VgzooError):
    """Good input that went bad: the loss or a gradient became NaN or infinite.

    The command line exits with status 3 for it, apart from usage errors.
    """


def unknown_choice(kind, given, choices, where=""):
    """An error for a name that is not among `choices`, with a did-you-mean."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(given), choices, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return VgzooError(
        f"unknown {kind} {given!r}{where}.{hint} Valid choices: {', '.join(choices)}."
    )
