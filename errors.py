"""Exceptions a user can hit. Each carries one sentence the CLI prints as-is and the API returns as a 4xx."""


class TempoError(Exception):
    """Base class: a problem with the user's input or environment, explained in one sentence."""

    exit_code: int = 2
