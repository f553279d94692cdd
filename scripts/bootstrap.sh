#!/usr/bin/env bash
# Set up ./.venv with music_classification and everything it needs.
#
#   bash scripts/bootstrap.sh [--gpu] [--no-audio] [--no-mpi]
#
# Needs Python 3.11 (python3.11 or python3 on PATH, or PYTHON=/path/to/it).
# As root on Debian it apt-gets what is missing (portaudio19-dev, to build
# PyAudio; openmpi-bin and libopenmpi-dev, for ChainerMN); as another user it
# says what to install and carries on without the microphone or MPI extra. Safe to rerun: it only reinstalls when setup.py or the
# options changed.
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

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && \
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
if [ -z "$python" ]; then
  say "Python 3.11 is needed (Chainer 7.8.1 runs on 3.11); none found."
  say "Install it (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11."
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

if ! [ -x .venv/bin/python ]; then
  say "creating .venv with $python"
  "$python" -m venv .venv || {
    say "'$python -m venv' failed: on Debian, apt-get install python3.11-venv"; exit 1; }
fi

stamp=.venv/.music_classification-installed
want="$(sha256sum setup.py scripts/constraints.txt | sha256sum | cut -c1-16) $extras"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

say "installing music_classification[$extras] into .venv (first time: a few minutes)"
export PIP_CONSTRAINT="$PWD/scripts/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "setuptools<74" wheel
.venv/bin/python -m pip install -q -e ".[$extras]"
.venv/bin/python -c 'import chainer, librosa, music_classification' || {
  say "the installed packages do not import; see the messages above"; exit 1; }
echo "$want" > "$stamp"
say "ready: .venv/bin/python"
