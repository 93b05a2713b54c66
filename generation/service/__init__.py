"""Serving: the engine (champions + micro-batching), the HTTP app around it, the inference networks
rearranged for speed, and the PNG writer. Never imports generation.train."""
