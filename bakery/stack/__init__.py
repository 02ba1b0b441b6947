"""The typed stack between the compose converter and its two emitters (stack file, Engine specs)."""

from .load import load
from .model import Service, Stack

__all__ = ["Service", "Stack", "load"]
