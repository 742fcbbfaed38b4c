"""What pages, the API and the call centre's pushes show of the domain's data.

The domain returns codes and data; the names people read come from the message catalogs
(web/i18n, through cloudhelp.core.i18n) and are put in here, in one place, for the HTTP routes
and the WebSocket pushes alike. Views import core, store and domain; http and callcenter
import views; nothing below imports them.
"""
