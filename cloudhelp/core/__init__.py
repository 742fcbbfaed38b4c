"""Shared foundations: settings, the district clock and working days, errors, logs, message
catalogs, input bounds, signed tokens, throttles. Imports nothing else of cloudhelp.
"""
