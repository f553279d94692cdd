"""Errors raised by :mod:`music_classification`.

Every problem a user can fix (a missing or corrupt file, a wrong sample rate,
an empty folder, a model file that does not fit the network) raises a subclass
of :class:`MusicClassificationError` whose message names the file and the
problem, so that no traceback from deep inside NumPy or Chainer reaches the
user.
"""


class MusicClassificationError(Exception):
    """Base class of every error this package raises on bad input."""


def reason(error, path):
    """``error``'s message without its leading ``path: ``, for a report
    that names ``path`` itself (a row of ``predict``'s or ``evaluate``'s
    output)."""
    message, prefix = str(error), '{}: '.format(path)
    return message[len(prefix):] if message.startswith(prefix) else message


class AudioFileError(MusicClassificationError):
    """An audio or noise file is missing, empty, corrupt or unusable."""


class SampleRateError(AudioFileError):
    """An audio file's sample rate differs from the one expected."""


class DatasetError(MusicClassificationError):
    """A dataset cannot be built from the given files or folders."""


class ModelFileError(MusicClassificationError):
    """A model file cannot be read, or does not fit the network."""


class ParameterError(MusicClassificationError, ValueError):
    """A function was called with an argument it cannot work with."""
