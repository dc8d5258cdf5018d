"""Delivery of the links: email (SMTP or outbox), SMS (HTTP gateway or outbox), letters.

`delivery.plan` says what would go out at a moment and why anything is held back;
`delivery.deliver` sends one (debtor, step, channel) at most once. Without KINDLY_SMTP_URL /
KINDLY_SMS_WEBHOOK_URL messages are written to `KINDLY_DATA_DIR/outbox/`.
"""
