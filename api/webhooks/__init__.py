"""Webhooks: coordination events pushed to other systems, in cursor order, signed per Standard Webhooks.

`WebhookAdmin` manages them (GraphQL, the CLI); `Deliverer` runs in every
server process and delivers the webhooks whose lease it holds (api/webhooks/delivery.py).
Nothing is imported here, so that `coco webhook` starts without the delivery's imports.
"""
