"""What loraplane does: jobs and their queue, the registry, artifacts, the worker and trainer."""
