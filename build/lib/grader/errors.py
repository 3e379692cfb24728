"""Exceptions the grader raises. Each message says what was found and what to do."""


class GraderError(Exception):
    """The grader itself cannot run (bad arguments, data or spec): exit non-zero."""


class SpecError(GraderError):
    """The spec file is missing, malformed or inconsistent."""


class DataError(GraderError):
    """The data set cannot be found, loaded or does not have the expected arrays."""


class UntrustedDataError(Exception):
    """Something that came out of a student's kernel is malformed or out of bounds."""
