"""Runtime applications behind the CLI (demo, run, info); torch-free."""
