"""Builds the C extension hashcore._sha256d; everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["csrc/build_sha256d.py:ffibuilder"])
