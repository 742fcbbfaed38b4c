"""The web layer: middleware, authentication, routes per concern, pages. Parse, authorise, call the
domain, render.
"""
