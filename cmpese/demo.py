"""The main job until train_cifar.py lands: build a zoo model, train it briefly on real data
(scikit-learn's digits, no download), export it to symbol JSON + params, reload the export
and check it gives the same predictions.

    python -m cmpese.demo [--model cmpe_se_preresnet20_1x1] [--epochs 3] [--out runs/demo]
"""
import argparse
import logging
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from .data import load_digits
from .model_zoo import get_model
from .tools.complexity import count_params
from .tools.export import export_model, load_exported


def _to_batches(images, labels, batch_size, shuffle, rng, mean, std):
    x = ((images.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield mx.nd.array(x[idx]), mx.nd.array(labels[idx])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='cmpe_se_preresnet20_1x1')
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=os.path.join('runs', 'demo'))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    mx.random.seed(args.seed)
    rng = np.random.RandomState(args.seed)

    train, test = load_digits('train'), load_digits('test')
    stats = train[0].mean(axis=(0, 1, 2)), train[0].std(axis=(0, 1, 2))
    logging.info('digits: %d train / %d test images, 32x32x3', len(train[0]), len(test[0]))
    net = get_model(args.model, classes=10)
    net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2))
    net.hybridize(static_alloc=True, static_shape=True)
    logging.info('%s: %.3fM parameters', args.model, count_params(net) / 1e6)
    trainer = gluon.Trainer(net.collect_params(), 'nag',
                            {'learning_rate': args.lr, 'momentum': 0.9, 'wd': 1e-4})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    start = time.time()
    for epoch in range(args.epochs):
        metric, total = mx.metric.Accuracy(), 0.0
        for x, y in _to_batches(*train, args.batch_size, True, rng, *stats):
            with autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(x.shape[0])
            metric.update(y, out)
            total += loss.sum().asscalar()
        test_metric = mx.metric.Accuracy()
        for x, y in _to_batches(*test, args.batch_size, False, rng, *stats):
            test_metric.update(y, net(x))
        logging.info('epoch %d: train loss %.3f, train acc %.3f, test acc %.3f (%.0fs)', epoch + 1,
                     total / len(train[0]), metric.get()[1], test_metric.get()[1],
                     time.time() - start)

    prefix = os.path.join(args.out, args.model)
    sym, params = export_model(net, prefix, (1, 3, 32, 32))
    reloaded = load_exported(prefix)
    x, _ = next(_to_batches(*test, 64, False, rng, *stats))
    gap = float(mx.nd.abs(reloaded(x) - net(x)).max().asscalar())
    logging.info('exported %s and %s; reloaded export differs by at most %.2e', sym, params, gap)
    if gap > 1e-4:
        raise SystemExit('exported model disagrees with the trained one (%.3g)' % gap)


if __name__ == '__main__':
    main()
