#!/usr/bin/env bash
# Set up ./.venv with music_classification and everything it needs.
#
#   bash scripts/bootstrap.sh [--gpu] [--no-audio]
#
# Needs Python 3.11 (python3.11 or python3 on PATH, or PYTHON=/path/to/it).
# As root on Debian it apt-gets what is missing (portaudio19-dev, to build
# PyAudio); as another user it says what to install and carries on without
# the microphone extra. Safe to rerun: it only reinstalls when setup.py or the
# options changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="test,hdf5,audio"
for arg in "$@"; do
  case "$arg" in
    --gpu) extras="$extras,gpu" ;;
    --no-audio) extras="${extras/,audio/}" ;;
    *) echo "bootstrap.sh: unknown option $arg (use --gpu, --no-audio)" >&2; exit 2 ;;
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

# Debian packages: PyAudio compiles against PortAudio.
if [[ ",$extras," == *,audio,* ]] && ! [ -e /usr/include/portaudio.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing portaudio19-dev (for PyAudio)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq portaudio19-dev >/dev/null
  else
    say "PyAudio needs PortAudio's headers: run 'sudo apt-get install portaudio19-dev'"
    say "and rerun this script. Going on without the microphone extra."
    extras="${extras/,audio/}"
  fi
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
