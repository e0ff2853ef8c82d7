"""fusionfm: all-in-one multi-modal image fusion with flow matching."""

__version__ = "0.1.0"
