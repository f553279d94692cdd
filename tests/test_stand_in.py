"""The stand-in numpy.distutils that lets Chainer 7 import on Python 3.12."""

import sys


def test_a_stand_in_numpy_distutils_only_where_it_is_missing():
    import subprocess
    # As on Python 3.12, where NumPy 1.26 has no numpy.distutils: the
    # stand-in answers, and Chainer's macOS BLAS check finds nothing.
    code = ('import numpy, sys\n'
            'if "{missing}": numpy.__path__ = []  # hide numpy.distutils\n'
            'import music_classification\n'
            'import numpy.distutils.system_info as info\n'
            'print(getattr(info, "STAND_IN", False), '
            'info.get_info("blas_opt") == {{}})\n')
    result = subprocess.run(
        [sys.executable, '-W', 'ignore', '-c', code.format(missing='yes')],
        capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['True', 'True']
    if sys.version_info < (3, 12):  # the real module, where there is one
        result = subprocess.run(
            [sys.executable, '-W', 'ignore', '-c', code.format(missing='')],
            capture_output=True, text=True, check=True)
        assert result.stdout.split()[0] == 'False'
