"""A real SMTP server for tests/alerts.rs: aiosmtpd on 127.0.0.1:PORT.

Each accepted message is written to OUTDIR as N.eml (the bytes as received), with its
plain text part as N.txt and its HTML part as N.html (decoded by Python's email module,
as a mail client would). A recipient containing REJECT (optional) gets a temporary
451 at RCPT, as a busy or greylisting server answers. Prints "ready" once it listens.

usage: python3 smtpd.py PORT OUTDIR [REJECT]
"""
import os
import sys
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
reject = sys.argv[3] if len(sys.argv) > 3 else None


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reject and reject in address:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = "%d-%d" % (time.time_ns(), os.getpid())
        msg = message_from_bytes(envelope.content, policy=policy.default)
        files = {".eml": envelope.content}
        for kind, ext in (("plain", ".txt"), ("html", ".html")):
            part = msg.get_body(preferencelist=(kind,))
            if part is not None:
                files[ext] = part.get_content().encode()
        files[".rcpt"] = "\n".join(envelope.rcpt_tos).encode()
        # The .eml last, renamed into place: a test that sees it sees the others too.
        for ext in (".txt", ".html", ".rcpt", ".eml"):
            if ext in files:
                tmp = os.path.join(out, "." + n + ext)
                with open(tmp, "wb") as f:
                    f.write(files[ext])
                os.rename(tmp, os.path.join(out, n + ext))
        return "250 Message accepted"


controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
