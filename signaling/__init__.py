"""A WebRTC signaling hub that knows nothing of government services.

It must never import ``cloudhelp``: the application builds on it, not the other way round.
"""
