"""cmpese: channel recalibration in residual networks (SE, CMPE-SE, Inner-Imaging,
Res-SE-Net) in MXNet Gluon, with every model registered into GluonCV's model zoo."""
__version__ = '0.1.0'

# A trainer started as a server or scheduler would become that node when mxnet loads (and wait,
# silent): refuse it first (cmpese/roles.py imports no mxnet).
from .roles import refuse_stray_role as _refuse_stray_role  # noqa: E402
_refuse_stray_role()

from . import models, units  # noqa: E402
from .model_zoo import get_model, get_model_list, register_gluoncv  # noqa: E402
from .units import get_unit, list_units  # noqa: E402

register_gluoncv()

__all__ = ['get_model', 'get_model_list', 'get_unit', 'list_units', 'models', 'units',
           '__version__']
