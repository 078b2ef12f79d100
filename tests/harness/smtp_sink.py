#!/usr/bin/env python3
"""The SMTP relay of the e-mail tests (tests/harness/smtpsink.h).

    smtp_sink.py PORT FILE [--tls CERT KEY [--implicit]] [--auth USER PASSWORD]

Listens on 127.0.0.1:PORT (without --tls: a relay on the same host, the
one case where mail.starttls may be off; with it, STARTTLS is required
before anything else, or with --implicit TLS from the first byte as
SMTPS relays do; with --auth a login too) and appends each message it accepts to
FILE as one JSON line, written and synced before the relay answers 250,
so a message the daemon was told is accepted is always in FILE:
{"from", "to": [...], "message_id", "subject" (decoded), "body" (decoded),
"headers": {name: value}}.

Recipients whose local part starts with "bounce" are refused for good at
RCPT (550), "later" for now (451). Prints "smtp sink: ready" once
listening; SIGTERM stops it.
"""
import asyncio
import email
import email.header
import email.policy
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
import ssl


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        local = address.split('@')[0]
        if local.startswith('bounce'):
            return '550 5.1.1 no such mailbox here'
        if local.startswith('later'):
            return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content,
                                       policy=email.policy.default)
        body = msg.get_payload(decode=True) or b''
        rec = {
            'from': envelope.mail_from,
            'to': envelope.rcpt_tos,
            'message_id': str(msg.get('Message-ID', '')),
            'subject': str(msg.get('Subject', '')),
            'body': body.decode(msg.get_content_charset() or 'utf-8'),
            'headers': {k: str(v) for k, v in msg.items()},
        }
        with open(self.path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(rec, ensure_ascii=False) + '\n')
            f.flush()
            os.fsync(f.fileno())
        return '250 2.0.0 OK queued'


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok)
    return check


async def main(port, path, opts):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    kw = {}
    implicit = None
    if '--tls' in opts:
        i = opts.index('--tls')
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(opts[i + 1], opts[i + 2])
        if '--implicit' in opts:
            implicit = ctx
        else:
            kw.update(tls_context=ctx, require_starttls=True)
    if '--auth' in opts:
        i = opts.index('--auth')
        kw.update(authenticator=authenticator(opts[i + 1], opts[i + 2]),
                  auth_required=True)
        if implicit is not None:
            # aiosmtpd sees TLS only when it did STARTTLS itself; here the
            # whole connection is TLS, so the login may be offered.
            kw.update(auth_require_tls=False)
    server = await loop.create_server(
        lambda: SMTP(Sink(path), hostname='sink.test', **kw),
        '127.0.0.1', port, ssl=implicit)
    print('smtp sink: ready', flush=True)
    await stop.wait()
    server.close()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))
