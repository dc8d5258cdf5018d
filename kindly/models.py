"""Every table of Kindly, each defined in the package that owns it.

Importing this module registers them all with the declarative base, so that relationships
across packages (a debtor's artifacts) resolve wherever a process starts from.
"""

from kindly.accounts.models import ApiToken, AuditLog, LoginAttempt, User
from kindly.campaigns.items import Item, PaymentItem
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cases.models import CaseHold
from kindly.claims.cost_booking import CostBooking  # noqa: F401 (registers the table)
from kindly.claims.models import BaseRate
from kindly.claims.writeoffs import WriteOff  # noqa: F401
from kindly.creditors.models import Creditor
from kindly.disputes.models import Dispute, DisputeFile
from kindly.feedback.models import SurveyAnswer  # noqa: F401
from kindly.inbox.models import CaseNote, InboxItem, InboxReply
from kindly.infra.db import Base
from kindly.messaging.models import OptOut, Send
from kindly.outbound.models import WebhookDelivery, WebhookSubscription
from kindly.payments.changes import PlanChange  # noqa: F401  (time within the rules)
from kindly.payments.models import Instalment, Payment, Plan, Promise, WebhookEvent
from kindly.reconciliation.models import BankAllocation, BankEntry, BankStatement
from kindly.refunds.models import Refund, RefundExport
from kindly.rules.models import Decision, RuleSet
from kindly.site.models import Artifact, IdentityCheck, RateCount
from kindly.tracking.models import Event

__all__ = [
    "ApiToken", "Artifact", "AuditLog", "BankAllocation", "BankEntry", "BankStatement", "Base",
    "BaseRate", "Campaign", "CampaignStatus", "CaseHold", "CaseNote", "Creditor", "Debtor",
    "Decision", "Dispute", "DisputeFile", "Event", "IdentityCheck", "InboxItem", "InboxReply",
    "Instalment", "Item", "LoginAttempt", "OptOut", "Payment", "PaymentItem", "Plan", "Promise",
    "RateCount", "Refund", "RefundExport", "RuleSet", "Send", "User",
    "WebhookDelivery", "WebhookEvent", "WebhookSubscription",
]  # fmt: skip
