"""Outbound webhooks: the webhook port over HTTP(S), signed as Standard Webhooks sign, sent only
to public addresses (``addresses.py``). Cloud-neutral: every cloud's functions send them alike."""
