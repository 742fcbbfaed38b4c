"""The rules of the help-desk: accounts, catalog, station network, the queue, cases and pre-review,
ratings, warnings, metrics, the audit trail, retention. Imports core and store, never http or
callcenter.
"""
