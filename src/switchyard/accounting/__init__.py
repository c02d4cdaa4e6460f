"""Keys, usage and cost."""
