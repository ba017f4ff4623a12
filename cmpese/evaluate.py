"""Single-crop evaluation of a trained model: top-1 / top-5 error, images counted, images/s,
parameters and FLOPs in one table.

    python -m cmpese.evaluate --model se_resnet50 --params runs/x/best.params \\
        --rec-val val.rec [--rec-val-idx val.idx] [--batch-size 64] [--classes 1000]
    python -m cmpese.evaluate --symbol runs/x/export/se_resnet50-symbol.json \\
        --params runs/x/export/se_resnet50-0000.params --rec-val val.rec
    python -m cmpese.evaluate --model cmpe_se_preresnet20_1x1 --params best.params \\
        --dataset digits
    ... --json result.json       # the same figures as JSON

ImageNet RecordIO: short side resized to 256 (``--input-size`` x 256/224), centre crop
(:class:`cmpese.data.imagenet.RecordLoader`). The iterator pads the last batch with
images from the start; those rows are dropped, so every image of the file is counted
exactly once (``images`` equals the file's record count). ``--dataset`` evaluates the test
split of CIFAR-10/100, SVHN or digits, normalized with the training split's statistics as
train_cifar.py does. images/s is the end-to-end rate (decode + forward), timed from the end
of the first batch (which builds the graph) to the end. Parameters are the trainable ones
(cmpese.analysis.complexity) for ``--model``; an exported ``--symbol`` has lost which are
trainable, so its count is that of its arguments (all but the BN running statistics,
e.g. 6 more for the frozen input BN of the CIFAR pre-act nets). FLOPs are multiply-adds
(cmpese.analysis.flops) of one image at ``--input-size``.

The command line (parser, ``main``) is :mod:`cmpese.cli.evaluate`; ``python -m
cmpese.evaluate`` runs it. The scoring is the fit loop's evaluator
(:func:`cmpese.training.fit.score_batches`), so a run's test error and this command's agree.
"""
import json
import os
import sys
import time

__all__ = ['evaluate_batches', 'evaluate_model', 'format_table']


def evaluate_batches(net, batches, ctx, classes, top_k=5):
    """Top-1 / top-k error of ``net`` over ``batches`` of ``(data, label)`` or
    ``(data, label, pad)`` (the last ``pad`` rows are not counted), each split over ``ctx``:
    :func:`cmpese.training.fit.score_batches`, timed.

    Returns ``dict(images, top1_error, top5_error (None when classes <= top_k), loss,
    seconds, images_per_sec)``; images/s is timed from the end of the first batch (which
    builds the graph) to the end, or over the whole run for a single batch.
    """
    from .training.fit import score_batches
    start = time.time()
    first = []          # (images, time) at the end of the first batch

    def mark(images):
        if not first:
            first.append((images, time.time()))
    r = score_batches(net, batches, ctx, classes, top_k=top_k, on_batch=mark)
    end = time.time()
    images = r.count
    timed_from, tic = first[0] if first else (0, start)
    seconds, timed = end - tic, images - timed_from
    if timed == 0:                 # a single batch: its whole time
        seconds, timed = end - start, images
    return dict(images=images, top1_error=r.top1_error if images else None,
                top5_error=r.top5_error if r.top5_error is not None and images else None,
                loss=r.loss if images else None, seconds=seconds,
                images_per_sec=timed / seconds if seconds > 0 else None)


def _load_net(args, classes, ctx, input_shape):
    """The network to evaluate and a description of it."""
    from .errors import UserError
    if args.symbol:
        if not os.path.isfile(args.symbol):
            raise UserError('--symbol %s does not exist; an exported model is '
                            '<prefix>-symbol.json (train_*.py --export writes it)' % args.symbol)
        params = args.params or args.symbol.replace('-symbol.json', '-0000.params')
        if not os.path.isfile(params):
            raise UserError('--params %s does not exist; give the .params written beside '
                            '%s' % (params, args.symbol))
        from .deploy.export import check_exported
        check_exported(args.symbol, params, symbol_flag='--symbol', params_flag='--params')
        net, runtime = _exported(args, params, ctx, input_shape)
        return net, '%s (%s; runtime %s)' % (os.path.basename(args.symbol), params, runtime)
    if not args.model:
        raise UserError('give --model NAME with --params FILE, or --symbol FILE of an exported '
                        'model')
    if not args.params:
        raise UserError('--params is required with --model (e.g. runs/<run>/best.params)')
    if not os.path.isfile(args.params):
        raise UserError('--params %s does not exist (a run writes best.params and '
                        'epoch-NNNN.params in its --save-dir)' % args.params)
    from .model_zoo import get_model
    try:
        model_args = json.loads(args.model_args)
        net = get_model(args.model, classes=classes, **model_args)
    except (KeyError, ValueError, TypeError) as err:
        raise UserError('--model %s: %s' % (args.model, str(err).strip('"')))
    from .weights.params import load_params_checked
    load_params_checked(net, args.params, ctx, flag='--params', classes_option='--classes %d',
                        hint='Pass the --model, --classes and --model-args the run was '
                             'trained with.')
    net.hybridize(static_alloc=True, static_shape=True)
    return net, '%s (%s)' % (args.model, args.params)


def export_data_config(symbol):
    """The data config beside an exported ``<prefix>-symbol.json`` (``<prefix>-data.json``),
    or None."""
    from .data.config import export_config_path, load_data_config
    if not symbol or not symbol.endswith('-symbol.json'):
        return None
    path = export_config_path(symbol[:-len('-symbol.json')])
    return load_data_config(path) if os.path.isfile(path) else None


class _PredictorNet(object):
    """A :class:`cmpese.deploy.Predictor` called like a network on NDArray batches."""

    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, x):
        import mxnet as mx
        return mx.nd.array(self.predictor.logits(x.asnumpy()), ctx=x.context)


def _exported(args, params, ctx, input_shape):
    """``(callable network, runtime name)`` of an exported model: the predictor of
    cmpese.deploy (onnxruntime or MXNet + oneDNN, ``--runtime``) on the CPU when that
    module is present and the files follow the export's naming, else MXNet's
    ``SymbolBlock`` on ``ctx``."""
    import re
    import mxnet as mx
    prefix = args.symbol[:-len('-symbol.json')] if args.symbol.endswith('-symbol.json') \
        else None
    match = re.search(r'-(\d{4})\.params$', params)
    on_cpu = all(c.device_type == 'cpu' for c in ctx) and len(ctx) == 1
    if prefix and match and on_cpu and params == '%s-%s.params' % (prefix, match.group(1)):
        try:
            from .deploy import Predictor
        except ImportError:
            Predictor = None
        if Predictor is not None:
            predictor = Predictor(prefix, runtime=args.runtime, epoch=int(match.group(1)),
                                  input_shape=tuple(input_shape[1:]))
            if predictor.input_size and tuple(predictor.input_size) != tuple(input_shape[2:]):
                from .errors import UserError
                raise UserError('%s was exported for %dx%d inputs, the evaluation gives %dx%d; '
                                'give --input-size %d (RecordIO) or the --dataset it was '
                                'trained on' % ((args.symbol,) + tuple(predictor.input_size) +
                                                tuple(input_shape[2:]) +
                                                (predictor.input_size[0],)))
            return _PredictorNet(predictor), predictor.runtime
    if args.runtime not in ('auto', 'mxnet'):
        from .errors import UserError
        raise UserError('--runtime %s needs cmpese.deploy, one CPU device and the '
                        'export\'s file names (<prefix>-symbol.json, <prefix>-NNNN.params)'
                        % args.runtime)
    import warnings
    with warnings.catch_warnings():   # MXNet warns that the input has no type yet
        warnings.simplefilter('ignore')
        net = mx.gluon.SymbolBlock.imports(args.symbol, ['data'], params, ctx=ctx)
    return net, 'mxnet SymbolBlock'


def _complexity(net, args, input_shape):
    """(parameters, multiply-adds) of the network for one image. An exported model's
    parameters are those of its symbol's arguments (BN running statistics are auxiliary
    states, not arguments), as :func:`cmpese.analysis.flops.count_flops` counts them."""
    from .analysis.complexity import count_params
    from .analysis.flops import count_flops
    if args.symbol:
        import mxnet as mx
        count = count_flops(mx.sym.load(args.symbol), input_shape=input_shape)
        return int(count.params), count.total
    return count_params(net, input_shape=input_shape), count_flops(
        net, input_shape=input_shape).total


def _classes_for(args):
    """--classes, else the synset.txt beside the .rec, else the model's default."""
    if args.classes:
        return args.classes, '--classes'
    if args.rec_val:
        from .data.imagenet import read_synset
        names = read_synset(os.path.join(os.path.dirname(os.path.abspath(args.rec_val)),
                                         'synset.txt'))
        if names:
            return len(names), 'synset.txt beside --rec-val'
    if args.dataset:
        from .data import DATASETS
        return DATASETS[args.dataset]['classes'], args.dataset
    if args.model:
        from .model_zoo import get_model_info
        try:
            return get_model_info(args.model).classes, 'the model\'s default'
        except ValueError:
            pass
    return 1000, 'ImageNet'


def evaluate_model(args):
    """Run the evaluation ``args`` describe; returns the result dict (what --json saves)."""
    import mxnet as mx
    from .errors import UserError
    from .training.cli import contexts
    ctx = contexts(args.gpus, args.cpus)
    if bool(args.rec_val) == bool(args.dataset):
        raise UserError('give exactly one of --rec-val FILE (ImageNet RecordIO) and --dataset '
                        'cifar10|cifar100|svhn|fashion-mnist|mnist|digits')
    if args.batch_size < 1:
        raise UserError('--batch-size must be at least 1, got %d' % args.batch_size)
    if args.input_size is not None and args.input_size < 1:
        raise UserError('--input-size must be a positive integer, got %d' % args.input_size)
    classes, classes_from = _classes_for(args)
    data_cfg = export_data_config(args.symbol)
    if data_cfg is not None and args.input_size and args.input_size != data_cfg.input_size:
        raise UserError('--input-size %d: the export %s was made for %dx%d inputs (its data '
                        'config); leave --input-size out' % (args.input_size, args.symbol,
                                                             data_cfg.input_size,
                                                             data_cfg.input_size))
    if args.rec_val:
        from .data.imagenet import IMAGENET_MEAN, IMAGENET_STD, RecordLoader
        # an export's data config gives the size, mean and std unless the flags do
        size = args.input_size or (data_cfg.input_size if data_cfg else 224)
        mean = args.mean or (data_cfg.mean if data_cfg else list(IMAGENET_MEAN))
        std = args.std or (data_cfg.std if data_cfg else list(IMAGENET_STD))
        loader = RecordLoader(args.rec_val, args.rec_val_idx, args.batch_size, train=False,
                              input_size=size, mean=mean, std=std,
                              threads=args.data_nthreads, pinned=bool(args.gpus),
                              flag='--rec-val', classes=classes)
        data_desc = '%s: %d images, short side %d, centre crop %d' % (
            os.path.basename(args.rec_val), loader.num_records, loader.resize, size)
        expected = loader.num_records
    else:
        from .data import BatchLoader, load_train_test
        from .data.datasets import DATASETS
        size = DATASETS[args.dataset]['size']
        if args.input_size and args.input_size != size:
            raise UserError('--input-size %d: --dataset %s is evaluated at its own %dx%d (its '
                            'images are not resized); leave --input-size out'
                            % (args.input_size, args.dataset, size, size))
        if data_cfg is not None and data_cfg.dataset != args.dataset:
            raise UserError('--dataset %s: the export %s was trained on %s (its data config)'
                            % (args.dataset, args.symbol, data_cfg.dataset))
        train, test, info = load_train_test(args.dataset, args.data_dir, False)
        loader = BatchLoader(test[0], test[1], args.batch_size, mean=info.mean, std=info.std,
                             prefetch=2)
        data_desc = '%s test split: %d images' % (args.dataset, len(test[0]))
        expected = len(test[0])
    input_shape = (1, 3, size, size)
    net, model_desc = _load_net(args, classes, ctx, input_shape)
    result = evaluate_batches(net, loader.epoch(0), ctx, classes)
    if result['images'] != expected:    # pragma: no cover - a broken loader
        raise RuntimeError('counted %d images, the set has %d' % (result['images'], expected))
    params, flops = _complexity(net, args, input_shape)
    mx.nd.waitall()
    result.update(model=model_desc, data=data_desc, classes=classes, classes_from=classes_from,
                  input_size=size, batch_size=args.batch_size, devices=[str(c) for c in ctx],
                  params=params, flops=flops, symbol=bool(args.symbol))
    return result


def _pct(value):
    return 'n/a' if value is None else '%.2f%%' % (100.0 * value)


def format_table(r):
    """The result as an aligned two-column table."""
    rows = [('model', r['model']),
            ('data', r['data']),
            ('classes', '%d (%s)' % (r['classes'], r['classes_from'])),
            ('images counted', '%d' % r['images']),
            ('top-1 error', _pct(r['top1_error'])),
            ('top-5 error', _pct(r['top5_error']) if r['top5_error'] is not None else
             'n/a (%d classes)' % r['classes']),
            ('images/s', 'n/a' if r['images_per_sec'] is None else
             '%.1f (batch %d on %s, decode included)' % (r['images_per_sec'], r['batch_size'],
                                                         ', '.join(r['devices']))),
            ('parameters', '%s (%.2fM%s)' % (format(r['params'], ','), r['params'] / 1e6,
                                             ', symbol arguments' if r.get('symbol') else
                                             ', trainable')),
            ('FLOPs', '%.3f G multiply-adds per %dx%d image' % (r['flops'] / 1e9, r['input_size'],
                                                              r['input_size']))]
    width = max(len(k) for k, _ in rows)
    return '\n'.join('%-*s  %s' % (width, k, v) for k, v in rows)


if __name__ == '__main__':       # the command line: cmpese.cli.evaluate
    from cmpese.cli.evaluate import console
    sys.exit(console(prog='python -m cmpese.evaluate'))
