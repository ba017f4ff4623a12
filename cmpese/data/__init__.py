"""Datasets read from local files in their official formats, and the bundled digits set."""
from .digits import load_digits

__all__ = ['load_digits']
