"""rotator: keeps Kubernetes image-pull credentials alive."""

__version__ = "0.1.0.dev0"
