"""State shared by replicas through Redis, with in-process fallbacks when Redis is away."""
