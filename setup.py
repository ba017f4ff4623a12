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
    python_requires='>=3.8',
    # MXNet is not listed here: the CPU and CUDA builds are different distributions that
    # install the same `mxnet` module. Pick one with an extra: pip install cmpese[cpu] or
    # cmpese[gpu] (CUDA 11.2); run.sh picks it from $CMPESE_MXNET.
    install_requires=['numpy<1.24', 'gluoncv==0.10.5.post0', 'tqdm', 'scikit-learn'],
    extras_require={
        'cpu': ['mxnet==1.9.1'],
        'gpu': ['mxnet-cu112==1.9.1'],
        'onnx': ['onnx<1.17', 'onnxruntime<1.20'],
        'test': ['pytest'],
    },
)
