"""Autograder and training-speed bench for Keras deep-learning exercises."""

__version__ = "0.1.0"
