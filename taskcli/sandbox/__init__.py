"""Running model-written programs: the runner, the kernel isolation, the child script."""
