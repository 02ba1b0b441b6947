"""bakery: Docker Swarm-mode clusters on OpenStack."""

__version__ = "0.1.0"
