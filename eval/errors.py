"""Mistakes a user of `tempo eval` can make, each one sentence (printed by the CLI, exit code 2)."""

from tempo.errors import InvalidInputError


class EvalError(InvalidInputError):
    """Base class of the evaluation harness's user errors."""


class AnnotationError(EvalError):
    """The benchmark directory has no annotation file we can read, or a row lacks a field."""


class ResultsFileError(EvalError):
    """--out holds results of a different run (benchmark, mode, budget or model), or is not ours."""
