"""The one exception type that user-caused errors raise."""


class AudioSepError(ValueError):
    """Bad input, configuration or file given by the user.

    Raised with a message saying what is wrong and what to do about it. Subclasses
    :class:`ValueError` so that generic callers can still catch it as one.
    """
