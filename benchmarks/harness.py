"""What every benchmark here shares: interleaved seeded rounds, medians, the environment line,
and the export + ONNX pair.

On a shared machine the load changes while a benchmark runs. So the things compared are
timed in *rounds*: every round runs each of them once, in a new random order drawn from the
benchmark's seed, and the first ``warmup`` rounds are thrown away (graph building, caches,
memory pools). A load that comes and goes then hits all of them alike, and the median over
the rounds is what the benchmark reports, with the load average it ran under.

    import harness                      # benchmarks/ is on sys.path when a benchmark runs
    harness.apply_env(args.env)          # --env KEY=VALUE, before mxnet is imported
    print(harness.environment_line())
    samples = harness.interleaved_rounds(
        lambda key: harness.time_call(calls[key], reps=4), list(calls), rounds=5, seed=0)
    for key, values in samples.items():
        print(key, 1e3 * harness.median(values), 'ms')

Nothing here imports mxnet at module level: :func:`apply_env` has to run before it is loaded
(``OMP_NUM_THREADS`` and the ``MXNET_*`` variables are read then).
"""
import os
import platform
import random
import statistics
import sys
import time

__all__ = ['apply_env', 'environment', 'environment_line', 'interleaved_rounds', 'time_call',
           'time_for', 'reps_for', 'median', 'export_pair', 'ENV_PREFIXES']

# the environment variables that change how MXNet and onnxruntime compute
ENV_PREFIXES = ('MXNET_', 'OMP_', 'KMP_', 'CMPESE_')


def apply_env(pairs):
    """Set the ``KEY=VALUE`` strings of a benchmark's repeatable ``--env`` option in
    ``os.environ`` (call it before mxnet is imported). A string without ``=`` is a
    ``ValueError`` naming it."""
    for pair in pairs or ():
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise ValueError('--env expects KEY=VALUE, got %r' % pair)
        os.environ[key] = value


def _cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or '?'


def environment():
    """What a measurement depends on: python, mxnet and onnxruntime versions (None when not
    installed), the CPU model and count, the variables of :data:`ENV_PREFIXES` that are set,
    and the 1-minute load average now."""
    try:
        import mxnet as mx
        mxnet = mx.__version__
    except ImportError:
        mxnet = None
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    return {'python': platform.python_version(), 'mxnet': mxnet, 'onnxruntime': ort,
            'cpu': _cpu_model(), 'cpus': os.cpu_count(), 'env': env,
            'load_average': os.getloadavg()[0] if hasattr(os, 'getloadavg') else None}


def environment_line(env=None):
    """One line for the head of a benchmark's output, e.g. ``python 3.11.2, mxnet 1.9.1,
    onnxruntime 1.19.2, <CPU> x2, env OMP_NUM_THREADS=2; load average 1.3``."""
    env = env or environment()
    parts = ['python %s' % env['python'], 'mxnet %s' % (env['mxnet'] or 'not installed'),
             'onnxruntime %s' % (env['onnxruntime'] or 'not installed'),
             '%s x%d' % (env['cpu'], env['cpus'] or 0),
             'env %s' % (' '.join('%s=%s' % kv for kv in env['env'].items()) or '-')]
    load = env.get('load_average')
    return ', '.join(parts) + ('; load average %.1f' % load if load is not None else '')


def interleaved_rounds(measure, keys, rounds, warmup=1, seed=0, label='', stream=None,
                       loads=None):
    """``{key: [measure(key) of every timed round]}``: ``warmup + rounds`` rounds, each calling
    ``measure(key)`` once for every key in an order shuffled by ``random.Random`` seeded with
    ``(seed, label)`` (the same order for the same seed and label on every run); the values
    of the first ``warmup`` rounds are dropped. ``measure`` returns the number to keep (seconds
    a call, images per second...). ``stream`` (e.g. ``sys.stderr``) gets one line a round
    with its wall time and the load average after it; ``loads``, a list, gets that load
    average of every round (warm-up included)."""
    if rounds < 1 or warmup < 0:
        raise ValueError('rounds must be >= 1 and warmup >= 0, got %d and %d'
                         % (rounds, warmup))
    keys = list(keys)
    rng = random.Random('%s-%s' % (seed, label))
    samples = {key: [] for key in keys}
    for r in range(warmup + rounds):
        order = list(keys)
        rng.shuffle(order)
        t0 = time.perf_counter()
        for key in order:
            value = measure(key)
            if r >= warmup:
                samples[key].append(value)
        load = os.getloadavg()[0]
        if loads is not None:
            loads.append(load)
        if stream is not None:
            stream.write('  %sround %d/%d%s: %.0f s, load average %.1f\n' % (
                label + ' ' if label else '', r + 1, warmup + rounds,
                ' (warm-up)' if r < warmup else '', time.perf_counter() - t0, load))
            stream.flush()
    return samples


def time_call(call, reps=1, clock=time.perf_counter, sync=None):
    """Seconds a call of ``call()``, timed over ``reps`` calls; ``sync()`` (e.g.
    ``mx.nd.waitall``) runs before the clock starts and before it stops, so asynchronous
    work is counted."""
    if sync:
        sync()
    t0 = clock()
    for _ in range(reps):
        call()
    if sync:
        sync()
    return (clock() - t0) / reps


def time_for(call, min_time, clock=time.perf_counter):
    """Seconds a call of ``call()``, calling it until at least ``min_time`` seconds passed
    (at least once)."""
    count, t0 = 0, clock()
    while True:
        call()
        count += 1
        elapsed = clock() - t0
        if elapsed >= min_time:
            return elapsed / count


def reps_for(call, min_time, cap=64):
    """How many calls of ``call()`` take about ``min_time`` seconds (1 to ``cap``), from one
    timed call."""
    t0 = time.perf_counter()
    call()
    once = time.perf_counter() - t0
    return min(cap, max(1, int(round(min_time / once)))) if once > 0 else cap


def median(values):
    """The median of ``values`` (NaN for none)."""
    return statistics.median(values) if values else float('nan')


def export_pair(net, prefix, input_shape, fold=False, onnx=True):
    """Export ``net`` as the deployment does (:func:`cmpese.deploy.export.export_model`,
    reference operators, ``fold``) and, with ``onnx``, convert it to ``{prefix}.onnx``
    (:func:`cmpese.deploy.export.export_onnx`). Returns ``(symbol file, params file, onnx
    file or None)``."""
    from cmpese.deploy.export import export_model, export_onnx
    input_shape = tuple(input_shape)
    symbol, params = export_model(net, prefix, input_shape, fold=fold)
    path = export_onnx(symbol, params, prefix + '.onnx', input_shape) if onnx else None
    return symbol, params, path


if __name__ == '__main__':
    sys.stdout.write(environment_line() + '\n')
