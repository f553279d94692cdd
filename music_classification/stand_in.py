"""A stand-in ``numpy.distutils`` for Chainer 7.8.1 on Python 3.12.

NumPy 1.26 (the last NumPy that Chainer 7 can import) ships
``numpy.distutils`` only for Python 3.11 and older, and Chainer 7.8.1
imports ``numpy.distutils.system_info`` in ``chainer/_environment_check.py``
for one check that runs on macOS only (is NumPy's BLAS Apple's Accelerate?).
Everything else of Chainer, its Trainer and ChainerMN works on 3.12.

:func:`install` appends a finder to the *end* of ``sys.meta_path``: Python
asks it only after every ordinary finder has failed, so it answers only
where the real module is missing, and then serves a ``numpy.distutils``
package whose ``system_info.get_info`` finds nothing (as it would on Linux
without the BLAS check). The package installs it on import; it imports
nothing itself.
"""

import importlib.abc
import importlib.util
import sys

NAMES = ('numpy.distutils', 'numpy.distutils.system_info')


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):

    def find_spec(self, name, path=None, target=None):
        if name not in NAMES:
            return None
        return importlib.util.spec_from_loader(
            name, self, is_package=name == 'numpy.distutils')

    def create_module(self, spec):
        return None  # an ordinary module object

    def exec_module(self, module):
        module.__doc__ = ('A stand-in of music_classification.stand_in: '
                          'this Python has no numpy.distutils.')
        module.STAND_IN = True
        if module.__name__ == 'numpy.distutils.system_info':
            module.get_info = get_info


def get_info(name, notfound_action=0):
    """``numpy.distutils.system_info.get_info``: nothing found (``{}``)."""
    return {}


def install():
    """Append the finder to ``sys.meta_path`` (once). Returns whether it was
    appended."""
    if any(isinstance(f, _StandIn) for f in sys.meta_path):
        return False
    sys.meta_path.append(_StandIn())
    return True
