"""taskcli: chat datasets as one conversation format, from the command line or from Python."""

__version__ = "0.1.0"
