"""Everything people see: Rich drawing, the browse screen, shell completion."""
