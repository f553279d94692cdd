#!/usr/bin/env bash
# Set up ./.venv with music_classification and everything it needs.
#
#   bash scripts/bootstrap.sh [--gpu] [--no-audio] [--no-mpi]
#
# Needs Python 3.11 or 3.12 (python3.11, python3.12 or python3 on PATH, or
# PYTHON=/path/to/it; a .venv of another version is made again).
# As root on Debian it apt-gets what is missing (portaudio19-dev, to build
# PyAudio; openmpi-bin and libopenmpi-dev, for ChainerMN); as another user it
# says what to install and carries on without the microphone or MPI extra.
# Safe to rerun: it only reinstalls when setup.py, the options or the Python
# version changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="test,hdf5,audio,mpi"
for arg in "$@"; do
  case "$arg" in
    --gpu) extras="$extras,gpu" ;;
    --no-audio) extras="${extras/,audio/}" ;;
    --no-mpi) extras="${extras/,mpi/}" ;;
    *) echo "bootstrap.sh: unknown option $arg (use --gpu, --no-audio, --no-mpi)" >&2; exit 2 ;;
  esac
done

say() { echo "[bootstrap] $*" >&2; }

# Chainer 7.8.1 runs on Python 3.11 and, with the package's stand-in for
# numpy.distutils, 3.12; 3.13 needs NumPy 2, which Chainer 7 cannot import.
version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
supported() { [ "$1" = 3.11 ] || [ "$1" = 3.12 ]; }
python=${PYTHON:-}
if [ -n "$python" ]; then
  version=$(version_of "$python") || { say "PYTHON=$python does not run"; exit 1; }
  supported "$version" || {
    say "PYTHON=$python is Python $version; Chainer 7.8.1 needs 3.11 or 3.12"
    [ "${version%%.*}" -gt 3 ] || [ "${version#*.}" -lt 13 ] ||
      say "(Python 3.13 and later need NumPy 2, which Chainer 7 cannot import)"
    exit 1; }
else
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null && supported "$(version_of "$candidate")"; then
      python=$candidate; version=$(version_of "$candidate"); break
    fi
  done
fi
if [ -z "$python" ]; then
  say "Python 3.11 or 3.12 is needed (Chainer 7.8.1 runs on them; 3.13 needs"
  say "NumPy 2, which Chainer 7 cannot import); none found. Install one (e.g."
  say "apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.12."
  exit 1
fi

# Debian packages: PyAudio compiles against PortAudio; mpi4py needs an MPI.
apt_get() {  # apt_get EXTRA PACKAGE... (as root), or explain and drop EXTRA
  local extra=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $* (for the $extra extra)"
    [ -n "${apt_updated:-}" ] || { apt-get update -qq >/dev/null; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "the $extra extra needs: sudo apt-get install $*; rerun this script"
    say "after that. Going on without it."
    extras="${extras/,$extra/}"
  fi
}
if [[ ",$extras," == *,audio,* ]] && ! [ -e /usr/include/portaudio.h ]; then
  apt_get audio portaudio19-dev
fi
if [[ ",$extras," == *,mpi,* ]] && ! command -v mpiexec >/dev/null; then
  apt_get mpi openmpi-bin libopenmpi-dev
fi

if [ -x .venv/bin/python ] && [ "$(version_of .venv/bin/python)" != "$version" ]; then
  say "recreating .venv with $python (it had Python $(version_of .venv/bin/python))"
  rm -rf .venv
fi
if ! [ -x .venv/bin/python ]; then
  say "creating .venv with $python (Python $version)"
  "$python" -m venv .venv || {
    say "'$python -m venv' failed: on Debian, apt-get install python$version-venv"; exit 1; }
fi

stamp=.venv/.music_classification-installed
want="$(sha256sum setup.py scripts/constraints.txt | sha256sum | cut -c1-16) $extras $version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

say "installing music_classification[$extras] into .venv (first time: a few minutes)"
export PIP_CONSTRAINT="$PWD/scripts/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "setuptools<74" wheel
.venv/bin/python -m pip install -q -e ".[$extras]"
.venv/bin/python -c 'import music_classification, chainer, librosa' || {
  say "the installed packages do not import; see the messages above"; exit 1; }
echo "$want" > "$stamp"
say "ready: .venv/bin/python"
