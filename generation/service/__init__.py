"""The generation service's parts: the engine (models + batching) and the HTTP app around it."""
