"""Edge Impulse: the same trained model through Edge Impulse's SDK, and a sketch for the library it builds.

``client`` (profile and deploy through the SDK, in a child process stopped at a deadline), ``worker``
(that child process), ``sketch`` (the static-buffer sketch around the library Edge Impulse returns,
and its entry in the export folder's report).
"""
