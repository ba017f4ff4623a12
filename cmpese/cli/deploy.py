"""Time an exported model in the predictor's runtime on random images.

    python -m cmpese.tools.deploy out/model [--runtime mxnet] [--batch 8] [--input-size 32]

``out/model`` is an export prefix (``{prefix}-symbol.json`` + ``{prefix}-0000.params``, and
the ONNX files if the export wrote them) or an ``.onnx`` file; the runtime is the
predictor's choice unless ``--runtime`` (:class:`cmpese.deploy.Predictor`, docs/deploy.md).
Prints the median time of ``--repeat`` batches after one untimed batch.
"""
import logging
import sys
import time

from ..deploy.predictor import RUNTIMES
from ..errors import ArgumentParser, UserError

__all__ = ['build_parser', 'main', 'console', 'PROG']

PROG = 'python -m cmpese.tools.deploy'


def build_parser(prog=PROG):
    parser = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='export prefix or .onnx file')
    parser.add_argument('--runtime', default='auto', choices=('auto',) + RUNTIMES)
    parser.add_argument('--batch', type=int, default=1, help='batch size to time (1)')
    parser.add_argument('--input-size', type=int,
                        help="input height and width (default: the export's, from its data "
                             'config or ONNX input; else 32)')
    parser.add_argument('--repeat', type=int, default=20, help='timed batches (20)')
    parser.add_argument('--threads', type=int, help="compute threads (the runtime's default)")
    return parser


def main(argv=None, prog=PROG):
    import numpy as np
    from ..deploy.predictor import InputError, Predictor
    args = build_parser(prog).parse_args(argv)
    for flag in ('batch', 'repeat', 'input_size', 'threads'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError('--%s must be a positive integer, got %d%s'
                            % (flag.replace('_', '-'), value, {
                                'batch': '; e.g. --batch 8', 'repeat': '; e.g. --repeat 20',
                                'input_size': "; leave it out for the export's own",
                                'threads': "; leave it out for the runtime's default"}[flag]))
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    size = args.input_size or 32
    predictor = Predictor(args.model, args.runtime, threads=args.threads,
                          input_shape=(3, size, size))
    if args.input_size is None and predictor.input_size:
        size = predictor.input_size[0]
    elif predictor.input_size and (size, size) != tuple(predictor.input_size):
        raise UserError('--input-size %d: %s was exported for %dx%d inputs; give --input-size '
                        '%d or leave it out' % (size, args.model, predictor.input_size[0],
                                                predictor.input_size[1],
                                                predictor.input_size[0]))
    x = np.random.RandomState(0).standard_normal((args.batch, 3, size, size)).astype(np.float32)
    try:
        predictor.logits(x)
    except InputError as err:
        raise UserError('--input-size %d: %s' % (size, err))
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        predictor.logits(x)
        times.append(time.perf_counter() - t0)
    print('%s on %s, batch %d: median %.2f ms per batch (%.1f images/s)'
          % (args.model, predictor.runtime, args.batch, 1e3 * float(np.median(times)),
             args.batch / float(np.median(times))))
    return 0


def console(prog='cmpese-deploy'):
    """The ``cmpese-deploy`` console script."""
    from . import console as run_console
    return run_console(main, prog)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.deploy'))
