"""Alias: the parameter counts the papers print, and the check against them, are in
:mod:`cmpese.papers` (read from ``cmpese/papers/rows.csv``)."""
from ..papers import (DEVIATIONS, INI_DEVIATIONS, INI_PARAMS, PAPER_PARAMS,  # noqa: F401
                      RES_SE_NET_RATIOS, TOLERANCE, agrees)

__all__ = ['PAPER_PARAMS', 'INI_PARAMS', 'DEVIATIONS', 'INI_DEVIATIONS', 'RES_SE_NET_RATIOS',
           'TOLERANCE', 'agrees']
