"""The software a notebook runs on here, read from the installed packages' metadata (no
import): a result graded on another Keras is not the same result."""

from __future__ import annotations

from importlib import metadata

KERAS_STACK = ("keras", "tensorflow", "jax", "jaxlib", "torch")


def installed_versions(packages: tuple[str, ...] = KERAS_STACK) -> dict[str, str]:
    """The version of each of ``packages`` that is installed."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
