"""The configuration error: its own module so the command line catches it without importing pydantic."""


class ConfigError(ValueError):
    """A config file, override or command-line value is invalid; the message names each bad field.

    The CLI prints it and exits with status 2, without a traceback; any other exception is a crash.
    """
