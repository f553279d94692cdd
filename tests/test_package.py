"""Importing the package: light, with its public names on first use."""

import sys

import pytest


HEAVY = ('chainer', 'cupy', 'librosa', 'numba', 'matplotlib', 'numpy',
         'scipy', 'soundfile')


def test_importing_the_package_loads_nothing_heavy():
    import subprocess
    code = ('import sys, music_classification; print(" ".join(sorted('
            'm for m in sys.modules if m.split(".")[0] in {!r})))'
            .format(HEAVY))
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == []
    # and the public names still load on first use
    from music_classification import MUSIC_NET, READ_DATASET, plotting
    assert MUSIC_NET.__module__ == 'music_classification.net'
    assert READ_DATASET.__module__ == 'music_classification.dataset'
    assert plotting.__name__ == 'music_classification.plotting'
    import music_classification
    with pytest.raises(AttributeError):
        music_classification.no_such_name
