"""Reading and writing files: conversation files, their rules, atomic outputs, YAML, downloads."""
