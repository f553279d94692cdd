"""``music-classification listen``: listen to the microphone and say which
artist is playing.

Loads a training run's folder (model.npz + labels.json), runs on the CPU by
default, records 16 kHz mono through PyAudio in chunks of 1024 samples,
keeps the original's rolling window of 160 chunks (10.24 s) and shows the
leading artist and a bar per class every --every seconds. Ctrl-C stops.
"""

import sys
import time

from music_classification.cli import command_parser, describe

PROG = 'music-classification listen'
EXAMPLES = """examples:
  music-classification listen --list-devices
  music-classification listen --model runs/demo/improved
  music-classification listen --model runs/mine --input-device pulse \\
      --smooth 3 --jsonl"""


def main(argv=None):
    from music_classification import realtime
    parser = command_parser(PROG, describe(__doc__), EXAMPLES)
    parser.add_argument('--model', '-M',
                        help='training output folder (model.npz, labels.json)')
    parser.add_argument('--device', '-d', default='-1',
                        help='-1 or @numpy: CPU (default); 0: GPU 0')
    parser.add_argument('--list-devices', action='store_true',
                        help='list the audio input devices and exit')
    parser.add_argument('--input-device', '-i', default=None,
                        help='input device index or part of its name')
    parser.add_argument('--device-rate', type=int, default=None,
                        help='record at this rate and resample (default: '
                        '16000 Hz where the device can, else its own rate)')
    parser.add_argument('--every', '-e', type=float, default=1.0,
                        help='seconds between predictions')
    parser.add_argument('--smooth', type=int, default=1,
                        help='average of the last N predictions')
    parser.add_argument('--ema', type=float, default=None,
                        help='exponential average with this weight on the '
                        'newest prediction (instead of --smooth)')
    parser.add_argument('--threshold', type=float,
                        default=realtime.THRESHOLD,
                        help='below this probability say "unknown" '
                        '(default %(default)s)')
    parser.add_argument('--bits', type=int, choices=[8, 16], default=16,
                        help='sample format: 16-bit, or 8-bit as the '
                        "original's PyAudio predictor")
    parser.add_argument('--plain', action='store_true',
                        help='one line per prediction, with a timestamp')
    parser.add_argument('--jsonl', action='store_true',
                        help='one JSON object per prediction')
    parser.add_argument('--duration', type=float, default=None,
                        help='stop after this many seconds (default: never)')
    args = parser.parse_args(argv)

    from music_classification.errors import MusicClassificationError
    if args.list_devices:
        pa = realtime.open_pyaudio()
        try:
            devices = realtime.list_input_devices(pa)
        finally:
            pa.terminate()
        for index, name, channels, rate in devices:
            print('{:3d}  {}  ({} ch, {} Hz)'.format(index, name, channels,
                                                     rate))
        if not devices:
            sys.exit(PROG + ': no audio input device found (is '
                     'a microphone connected, or PulseAudio running?)')
        return
    if not args.model:
        parser.error('--model is required (or --list-devices)')

    import chainer
    from music_classification import collection
    try:
        model, class_names, config = collection.load_trained(args.model)
        device = chainer.get_device(args.device)
        model.to_device(device)
        device.use()  # --device 1 allocates on GPU 1, not GPU 0
        recognizer = realtime.Recognizer(
            model, class_names, config, every=args.every, smooth=args.smooth,
            ema=args.ema, threshold=args.threshold)
        recognizer.warm_up()
        mic = realtime.Microphone(args.input_device, rate=config.sr,
                                  chunk=config.chunk, bits=args.bits,
                                  device_rate=args.device_rate)
    except MusicClassificationError as e:
        sys.exit(PROG + ': {}'.format(e))
    except OSError as e:  # PortAudio could not open the device
        sys.exit(PROG + ': cannot open the input device: '
                 '{}'.format(e))
    print('listening on {} ({}{}); Ctrl-C to stop'.format(
        mic.device, mic.device_name, ', resampled from {} Hz'.format(
            mic.device_rate) if mic.resampled else ''),
        file=sys.stderr, flush=True)
    shown = 0
    start = time.monotonic()
    try:
        while args.duration is None or \
                time.monotonic() - start < args.duration:
            prediction = recognizer.push(mic.read())
            if prediction is None:
                continue
            if args.jsonl:
                print(realtime.json_line(prediction, class_names), flush=True)
            elif args.plain:
                print(realtime.plain_line(prediction), flush=True)
            else:
                lines = realtime.render(prediction, class_names)
                if mic.dropped_seconds:
                    lines.append('behind the microphone: {:.1f} s of audio '
                                 'dropped'.format(mic.dropped_seconds))
                if shown:
                    sys.stdout.write('\x1b[{}F'.format(shown))
                sys.stdout.write(''.join(line + '\x1b[K\n' for line in lines))
                sys.stdout.flush()
                shown = len(lines)
    except KeyboardInterrupt:
        pass
    except MusicClassificationError as e:
        sys.exit(PROG + ': {}'.format(e))
    finally:
        mic.close()
        print('stopped after {:.1f} s of audio; input overflows: {}; '
              'dropped while behind: {:.1f} s'.format(
                  recognizer.samples_heard / config.sr, mic.overflows,
                  mic.dropped_seconds), file=sys.stderr)

