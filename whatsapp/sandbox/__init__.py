"""The Cloud API sandbox: the embedded default for Meta.

A stand-in for the Graph API with Meta's paths and request, response and error shapes, so the
real client (``whatsapp.client``) and the real webhook receiver run unchanged; only
``WHATSAPP_GRAPH_URL`` differs. It validates what it receives as Meta would, sends the hub signed
webhooks (sent → delivered → read with pricing, template approved/rejected, inbound replies),
injects faults and latency on request, serves OTP verification, and offers a phone simulator.

It speaks to the hub only over HTTP (Graph paths in, signed webhooks out) and imports nothing of
the hub's apps: that is what keeps it honest as a stand-in for Meta.
"""
