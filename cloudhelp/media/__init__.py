"""WebRTC media in Python (aiortc): the test and benchmark peer."""
