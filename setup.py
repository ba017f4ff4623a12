"""cmpese: SE, CMPE-SE, Inner-Imaging and Res-SE-Net residual networks in MXNet Gluon."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'cmpese', '__init__.py')) as f:
    VERSION = re.search(r"__version__ = '([^']+)'", f.read()).group(1)

setup(
    name='cmpese',
    version=VERSION,
    description='Channel recalibration in residual networks: SE, CMPE-SE, Inner-Imaging, '
                'Res-SE-Net (MXNet Gluon / GluonCV)',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['cmpese', 'cmpese.*']),
    package_data={'cmpese.papers': ['rows.csv'],      # every figure the papers print
                  'cmpese.native': ['fused.cc']},     # compiled by cmpese.native.load()
    python_requires='>=3.8',
    # MXNet is not listed here: the CPU and CUDA builds are different distributions that
    # install the same `mxnet` module. Pick one with an extra: pip install cmpese[cpu] or
    # cmpese[gpu] (CUDA 11.2); run.sh picks it from $CMPESE_MXNET.
    install_requires=['numpy<1.24', 'gluoncv==0.10.5.post0', 'tqdm', 'scikit-learn'],
    # The command lines (cmpese/cli/): each runs its main() through cmpese.errors.run.
    entry_points={'console_scripts': [
        'cmpese-train-cifar = cmpese.cli.train_cifar:console',
        'cmpese-train-imagenet = cmpese.cli.train_imagenet:console',
        'cmpese-evaluate = cmpese.cli.evaluate:console',
        'cmpese-launch = cmpese.cli.launch:console',
        'cmpese-study = cmpese.cli.study:console',
        'cmpese-convert = cmpese.cli.convert:console',
        'cmpese-export = cmpese.cli.export:console',
        'cmpese-deploy = cmpese.cli.deploy:console',
        'cmpese-flops = cmpese.cli.flops:console',
        'cmpese-complexity = cmpese.cli.complexity:console',
        'cmpese-visualize = cmpese.cli.visualize:console',
        'cmpese-reproduce = cmpese.cli.reproduce:console',
        'cmpese-demo-imagenet = cmpese.cli.demo_imagenet:console',
    ]},
    extras_require={
        'cpu': ['mxnet==1.9.1'],
        'gpu': ['mxnet-cu112==1.9.1'],
        'onnx': ['onnx<1.17', 'onnxruntime<1.20'],
        'test': ['pytest'],
    },
)
