"""Errors shared by every layer."""


class ConfigError(ValueError):
    """An invalid setting, found before any work starts.

    Every config (preparation, sampling, augmentation, training) raises this one type, so a
    form can put ``message`` beside the field named ``field`` and the CLI can print
    ``str(error)`` ("field: message") without parsing either.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
