"""Persistence for calls, their event log, SMS messages and opt-outs (SQLite or PostgreSQL).

Open a Store from a database URL, run ``upgrade_database`` (or ``Store.upgrade``) once at
start-up, and do all reads and writes inside ``async with store.transaction() as tx``.
"""

from ivr.store.calls import CallChanges, CallEventRecord, CallRecord, draft_inbound_call
from ivr.store.campaigns import Admission, CampaignRecord, Counts, ExportRow, NewCampaign
from ivr.store.db import (
    DATABASE_URL_VARIABLE,
    DEFAULT_DATABASE_URL,
    DatabaseURLError,
    create_engine,
    normalize_database_url,
)
from ivr.store.messages import SmsRecord
from ivr.store.migrate import database_revision, head_revision, upgrade_database
from ivr.store.models import (
    ALL_CATEGORIES,
    FINAL_CALL_STATUSES,
    FINAL_NOTIFICATION_STATUSES,
    FINAL_SMS_STATUSES,
    CallStatus,
    CampaignState,
    Direction,
    EventKind,
    NotificationStatus,
    OptOutSource,
    SmsStatus,
)
from ivr.store.notifications import (
    ContactRecord,
    NewNotification,
    NotificationRecord,
    WebhookDeliveryRecord,
)
from ivr.store.opt_outs import OptOutRecord
from ivr.store.repo import NestedTransactionError, Store, Transaction

__all__ = [
    "ALL_CATEGORIES",
    "DATABASE_URL_VARIABLE",
    "DEFAULT_DATABASE_URL",
    "FINAL_CALL_STATUSES",
    "FINAL_NOTIFICATION_STATUSES",
    "FINAL_SMS_STATUSES",
    "Admission",
    "CallChanges",
    "CallEventRecord",
    "CallRecord",
    "CallStatus",
    "CampaignRecord",
    "CampaignState",
    "ContactRecord",
    "Counts",
    "DatabaseURLError",
    "Direction",
    "EventKind",
    "ExportRow",
    "NestedTransactionError",
    "NewCampaign",
    "NewNotification",
    "NotificationRecord",
    "NotificationStatus",
    "OptOutRecord",
    "OptOutSource",
    "SmsRecord",
    "SmsStatus",
    "Store",
    "Transaction",
    "WebhookDeliveryRecord",
    "create_engine",
    "database_revision",
    "draft_inbound_call",
    "head_revision",
    "normalize_database_url",
    "upgrade_database",
]
