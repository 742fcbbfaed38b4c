"""CloudHelp (云帮办): a remote video help-desk linking community kiosks and district staff."""

__version__ = "0.1.0"
