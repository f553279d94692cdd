"""Runnable benchmarks: ``python -m benchmarks.<name>``."""

# Before any benchmark imports Chainer: on Python 3.12 the package puts its
# stand-in numpy.distutils in place for it.
import music_classification  # NOQA: F401
