"""Storage backends: where an asset's data lives. Built-ins use the public plugin hooks."""
