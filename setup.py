"""Install music_classification.

Chainer 7.8.1 ships only as a source distribution whose setup.py imports
pkg_resources, and it imports pkg_resources and numpy.distutils at run time:
build it with setuptools<81 and run it with setuptools<74 and numpy<2. On
Python 3.12 NumPy 1.26 has no numpy.distutils: the package serves a
stand-in (music_classification/stand_in.py); Python 3.13 needs NumPy 2.
scripts/bootstrap.sh does all of that; see the README.
"""

from setuptools import find_packages, setup

with open('README.md', encoding='utf-8') as f:
    long_description = f.read()

# CuPy 13 (CuPy 14 needs NumPy 2, which Chainer 7 cannot import) and the CUDA
# 12 runtime libraries it loads, so that only an NVIDIA driver is needed.
# Chainer 7 knows cuDNN 8 only.
GPU = [
    'cupy-cuda12x>=13,<14',
    'nvidia-cuda-runtime-cu12',
    'nvidia-cuda-nvrtc-cu12',
    'nvidia-cublas-cu12',
    'nvidia-curand-cu12',
    'nvidia-cufft-cu12',
    'nvidia-cusolver-cu12',
    'nvidia-cusparse-cu12',
    'nvidia-cudnn-cu12>=8.9,<9',
]

setup(
    name='music_classification',
    version='0.1.0',
    description='Which artist is playing? A Chainer reimplementation of '
                '"Deep Learning music recognition" (MUSIC_NET).',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(include=['music_classification',
                                    'music_classification.*']),
    python_requires='>=3.11,<3.13',
    install_requires=[
        'chainer==7.8.1',
        'numpy>=1.26,<2',
        'setuptools<74',
        'scipy>=1.11',
        'librosa>=0.10.2,<0.12',
        'soundfile>=0.12',
        'soxr>=0.3',
        'matplotlib>=3.8',
    ],
    extras_require={
        'audio': ['pyaudio>=0.2.14'],
        'hdf5': ['h5py>=3.9'],
        'gpu': GPU,
        'test': ['pytest>=8', 'h5py>=3.9', 'nbclient>=0.10',
                 'nbformat>=5.10', 'ipykernel>=6.29',
                 'scikit-learn>=1.3'],  # the ablation study's MFCC baseline
        'notebooks': ['jupyterlab>=4', 'ipykernel>=6.29'],
        # ChainerMN data-parallel training (needs an MPI, e.g. Open MPI)
        'mpi': ['mpi4py>=4.1'],
        # the ablation study and benchmarks/wesnoth: the MFCC + logistic
        # regression baseline
        'bench': ['scikit-learn>=1.3'],
        # mutation testing (benchmarks/mutation.py; setup.cfg's [mutmut])
        'mutation': ['mutmut==3.8.1'],
    },
    entry_points={
        'console_scripts': [
            'music-classification = music_classification.cli:main',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Topic :: Multimedia :: Sound/Audio :: Analysis',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
