"""ociasm: a daemonless OCI image assembler for Cog models."""

__version__ = "0.1.0"
