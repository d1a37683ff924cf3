#!/usr/bin/env python3
"""Writes a synthetic NDJSON batch for load measurements (not a test fixture).
Usage: gen_events.py CONTACTS CONVERSATIONS_PER_CONTACT MESSAGES_PER_CONVERSATION > events.ndjson
Every conversation: open, an assignment, alternating incoming/outgoing messages with a
delivery receipt per outgoing message, and a close. Times spread over 60 days of 2026."""
import json, sys

contacts, per_contact, per_conv = (int(a) for a in sys.argv[1:4])
base = 1_767_225_600  # 2026-01-01T00:00:00Z
out = sys.stdout
n = 0

def at(sec):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + sec))

def emit(obj):
    global n
    n += 1
    obj["id"] = f"e{n}"
    out.write(json.dumps(obj, separators=(",", ":")))
    out.write("\n")

for c in range(contacts):
    cid = f"c{c}"
    emit({"type": "contact.added", "at": at(c * 7 % 86400), "contact": {"id": cid, "name": f"Contact {c}"}, "source": "incoming_message"})
    for k in range(per_contact):
        t = (c * 7919 + k * 400_000) % (60 * 86400) + 86400
        conv = f"{cid}-v{k}"
        emit({"type": "conversation.opened", "at": at(t), "conversation_id": conv, "contact_id": cid, "source": "contact", "channel_id": "wa"})
        emit({"type": "contact.assigned", "at": at(t + 5), "contact_id": cid, "assignee_id": f"u{c % 20}", "source": "workflow"})
        for m in range(per_conv):
            mid = f"{conv}-m{m}"
            ts = t + 10 + m * 60
            if m % 2 == 0:
                emit({"type": "message.received", "at": at(ts), "message_id": mid, "contact_id": cid, "channel_id": "wa", "content": {"type": "text", "text": "hello"}})
            else:
                emit({"type": "message.sent", "at": at(ts), "message_id": mid, "contact_id": cid, "channel_id": "wa", "source": "user", "user_id": f"u{c % 20}", "message_type": "session", "content": {"type": "text", "text": "hi"}})
                emit({"type": "message.status", "at": at(ts + 3), "message_id": mid, "status": "delivered"})
        emit({"type": "conversation.closed", "at": at(t + 10 + per_conv * 60), "conversation_id": conv, "source": "user", "user_id": f"u{c % 20}"})
