"""Find-my-case against a real (slow) SMTP server: the answer never waits for the link to be
sent, so its time cannot tell a hit from a miss (issue 17)."""

from __future__ import annotations

import asyncio
import email
import time
from email import policy

import pytest
from aiosmtpd.controller import Controller

from tests.support import services
from tests.support.app import front_client, installed, load_campaign, make_settings
from tests.unit.test_web import csrf_from

SLOW = 0.4  # seconds the server takes to accept a message


class SlowInbox:
    """Accepts every message, slowly."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(SLOW)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def slow_smtp():
    inbox = SlowInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    yield inbox, f"smtp+insecure://127.0.0.1:{controller.port}"
    controller.stop()


def test_a_hit_answers_as_fast_as_a_miss_and_the_link_arrives_after(tmp_path, slow_smtp):
    inbox, url = slow_smtp
    settings = make_settings(tmp_path / "var", KINDLY_SMTP_URL=url)
    with installed(settings) as ctx:
        load_campaign(ctx)
        client = front_client(ctx)
        took = {}
        for n, (kind, postcode) in enumerate((("miss", "99999"), ("hit", "10115"))):
            csrf = csrf_from(client.get("/find").get_data(as_text=True))
            start = time.perf_counter()
            response = client.post(
                "/find",
                data={"csrf_token": csrf, "reference": "A-1", "postal_code": postcode},
                environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
            )
            took[kind] = (time.perf_counter() - start, response.get_data(as_text=True))
            assert inbox.messages == []  # nothing was sent before the answer was complete
            response.close()  # the server closes the response once it is out
        assert took["hit"][1] == took["miss"][1]
        assert took["hit"][0] < SLOW and took["miss"][0] < SLOW
        (message,) = inbox.messages
        assert message["To"].addresses[0].addr_spec == "anna@example.org"
        assert "/s/" in message.get_content()
