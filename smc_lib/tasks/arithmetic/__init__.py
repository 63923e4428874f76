"""Arithmetic reasoning (math word problems): GTS and Graph2Tree on MAWPS, ASDiv-A and SVAMP.

Importing the package registers the "arithmetic" task.
"""
from .task import ArithmeticTask  # noqa: F401  (registers the task)
