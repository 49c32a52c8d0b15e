"""Everything that touches the outside: persistence settings and recorders, the CLI, file formats."""
