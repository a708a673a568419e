"""Errors a user can act on. The CLI prints each as one line and exits with its code."""


class OciasmError(Exception):
    """A failure with a message that names the file, field or reference and what to do."""

    exit_code = 2


class RegistryError(OciasmError):
    """A registry refused, failed or could not be reached."""


class DigestMismatch(OciasmError):
    """Bytes did not hash to the digest they were announced under."""
