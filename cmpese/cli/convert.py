"""Convert a timm / GluonCV / cmpese weights file into a cmpese .params for a zoo model, and
print what was loaded, what is new in the model and what was skipped (:mod:`cmpese.weights`).

    python -m cmpese.tools.convert resnet50.safetensors --model resnet50
    python -m cmpese.tools.convert seresnet50.safetensors --model se_resnet50 \\
        --model-args '{"unit_kwargs": {"use_bias": true}}'
    python -m cmpese.tools.convert resnet50.safetensors --model cmpe_se_resnet50_1x1 \\
        --backbone-only --classes 10 --out cmpe50-init.params
    python -m cmpese.tools.convert resnet50_v1b-0ecdba34.params --model resnet50

The output is the model's ``save_parameters`` file (default ``./<model>.params``):
``cmpese.get_model(<model>, pretrained=True, root='.')`` or ``net.load_parameters`` reads
it. Parameters the file does not give (units, another classifier) are written as
initialized (He / MSRA gaussian) and listed as new. A file that does not fit is one line
and exit 2.
"""
import json
import os
import re
import sys

from ..errors import ArgumentParser, UserError, check_output_path

__all__ = ['build_parser', 'main', 'console', 'PROG', 'build_model']

PROG = 'python -m cmpese.tools.convert'
_OTHER_DEPTHS = re.compile(r'^(se_)?resnet(18|34|152)$')


def build_parser(prog=PROG):
    p = ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    p.add_argument('file', metavar='FILE',
                   help='a timm .safetensors, a GluonCV .params (resnet*_v1b, resnet*_v2, '
                        'se_resnet*_v2) or a cmpese .params of an ImageNet ResNet')
    p.add_argument('--model', required=True, metavar='NAME',
                   help='the cmpese zoo name to convert for (resnet50, se_resnet101, '
                        'cmpe_se_resnet50_1x1, ini_resnet50_mix_5_d, ...); resnet18/34/152 '
                        'and se_resnet18/34/152 are built too')
    p.add_argument('--out', metavar='PATH',
                   help='the .params to write (default ./<model>.params)')
    p.add_argument('--source', default='auto', choices=('auto', 'timm', 'gluoncv', 'cmpese'),
                   help='who wrote FILE (default: read from the file)')
    p.add_argument('--arch', metavar='GLUONCV_NAME',
                   help='the GluonCV model of an old .params saved by parameter names '
                        '(default: searched for)')
    p.add_argument('--backbone-only', action='store_true',
                   help='load the stem and stages only: units and classifier stay new (also '
                        'what loads a post-activation file into a pre-activation model)')
    p.add_argument('--classes', type=int, metavar='N',
                   help='classifier size (default: the model\'s); another size than the '
                        'file\'s leaves the classifier new')
    p.add_argument('--model-args', default='{}', metavar='JSON',
                   help='keyword arguments of the builder, e.g. \'{"unit_kwargs": '
                        '{"use_bias": true}}\' for timm\'s SE units with biases')
    p.add_argument('--verbose', action='store_true', help='list every tensor of the report')
    p.add_argument('--json', metavar='PATH', help='also write the report as JSON')
    p.add_argument('--dry-run', action='store_true', help='report only, write no .params')
    return p


def build_model(name, classes=None, **kwargs):
    """The zoo model ``name``; ``[se_]resnet18/34/152`` (depths the zoo does not list) from
    :func:`cmpese.models.get_resnet_imagenet`."""
    m = _OTHER_DEPTHS.match(name.lower())
    if m:
        from ..models import get_resnet_imagenet
        if classes is not None:
            kwargs['classes'] = classes
        return get_resnet_imagenet(int(m.group(2)), unit='se' if m.group(1) else None,
                                   **kwargs)
    from ..model_zoo import get_model
    return get_model(name, classes=classes, **kwargs)


def main(argv=None, prog=PROG):
    args = build_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(args.file):
        raise UserError('%s %s: give a .safetensors or .params file' % (
            args.file, 'is a directory' if os.path.isdir(args.file) else 'does not exist'))
    if args.classes is not None and args.classes < 1:
        raise UserError('--classes must be at least 1, got %d' % args.classes)
    try:
        model_args = json.loads(args.model_args)
    except ValueError as err:
        raise UserError('--model-args is not JSON (%s): e.g. \'{"unit_kwargs": {"use_bias": '
                        'true}}\'' % err)
    if not isinstance(model_args, dict):
        raise UserError('--model-args must be a JSON object, e.g. \'{"reduction": 16}\'')
    out = args.out or '%s.params' % args.model.lower()
    if os.path.abspath(out) == os.path.abspath(args.file):
        raise UserError('--out %s is the input file; write the conversion elsewhere' % out)
    outputs = [('--json', args.json)] + ([] if args.dry_run else [('--out', out)])
    for flag, path in outputs:          # every file to write, checked before any work
        if path:
            check_output_path(path, flag, create=True)
    try:
        net = build_model(args.model, args.classes, **model_args)
    except (KeyError, ValueError, TypeError) as err:
        raise UserError('--model %s: %s' % (args.model, str(err).strip('"')))
    from ..weights import load_pretrained
    report = load_pretrained(net, args.file, source=args.source,
                             backbone_only=args.backbone_only, arch=args.arch)
    print('\n'.join(report.summary(verbose=args.verbose)))
    if args.json:
        from ..training.checkpoint import atomic_write

        def write(tmp):
            with open(tmp, 'w') as f:
                json.dump(report.to_dict(), f, indent=1)
        try:
            atomic_write(args.json, write)
        except OSError as err:
            raise UserError('--json %s cannot be written (%s)' % (args.json,
                                                                 err.strerror or err))
    if args.dry_run:
        return 0
    import mxnet as mx
    from ..errors import deferred_interrupts
    tmp = out + '.tmp%d' % os.getpid()
    try:
        with deferred_interrupts():
            net.save_parameters(tmp)
            os.replace(tmp, out)
    except OSError as err:
        raise UserError('--out %s cannot be written (%s)' % (out, err.strerror or err))
    except mx.base.MXNetError as err:      # how MXNet's writer reports a failed write
        from ..weights.params import error_line
        raise UserError('--out %s cannot be written (%s); free space there or choose another '
                        'path' % (out, error_line(err, 100)))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print('wrote:   %s (load: cmpese.get_model(%r%s%s).load_parameters(%r))'
          % (out, args.model, ', classes=%d' % args.classes if args.classes else '',
             ''.join(', %s=%r' % kv for kv in sorted(model_args.items())), out))
    return 0


def console(prog='cmpese-convert'):
    """The ``cmpese-convert`` console script (not computing: no OpenMP restart)."""
    from . import console as run_console
    return run_console(main, prog, threads=False)


if __name__ == '__main__':
    sys.exit(console('python -m cmpese.cli.convert'))
