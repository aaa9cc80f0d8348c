"""Only the optional C part of the dataset validator; everything else is in pyproject.toml.
`make build` (or `python setup.py build_ext --inplace`) builds it; without it a Python twin runs."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("swift_ext.datasets._rowcheck", ["swift_ext/datasets/_rowcheck.c"], optional=True,
                             extra_compile_args=["-O2"])])
