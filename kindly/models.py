"""Every table of Kindly, each defined in the package that owns it.

Importing this module registers them all with the declarative base, so that relationships
across packages (a debtor's artifacts) resolve wherever a process starts from.
"""

from kindly.accounts.models import ApiToken, AuditLog, LoginAttempt, User
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cases.models import CaseHold
from kindly.claims.cost_booking import CostBooking  # noqa: F401 (registers the table)
from kindly.creditors.models import Creditor
from kindly.inbox.models import CaseNote, InboxItem, InboxReply
from kindly.infra.db import Base
from kindly.messaging.models import OptOut, Send
from kindly.outbound.models import WebhookDelivery, WebhookSubscription
from kindly.payments.models import Instalment, Payment, Plan, Promise, WebhookEvent
from kindly.reconciliation.models import BankAllocation, BankEntry, BankStatement
from kindly.refunds.models import Refund, RefundExport
from kindly.rules.models import Decision, RuleSet
from kindly.site.models import Artifact, IdentityCheck, RateCount
from kindly.tracking.models import Event

__all__ = [
    "ApiToken", "Artifact", "AuditLog", "BankAllocation", "BankEntry", "BankStatement", "Base",
    "Campaign", "CampaignStatus", "CaseHold", "CaseNote", "Creditor", "Debtor", "Decision",
    "Event", "IdentityCheck", "InboxItem", "InboxReply", "Instalment", "LoginAttempt", "OptOut",
    "Payment", "Plan", "Promise", "RateCount", "Refund", "RefundExport", "RuleSet", "Send", "User",
    "WebhookDelivery", "WebhookEvent", "WebhookSubscription",
]  # fmt: skip
