"""Domain errors: each carries a message a person can act on."""


class KindlyError(Exception):
    """Base of every error Kindly reports to a person in one line."""


class ConfigError(KindlyError):
    """A setting is missing or malformed."""


class NotFound(KindlyError):
    """A campaign, debtor or token does not exist."""


class ServiceUnavailable(KindlyError):
    """A backing service (database, Redis, S3, SMTP) cannot be reached."""
