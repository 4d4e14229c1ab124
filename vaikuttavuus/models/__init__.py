"""The database model. Import models from here so every mapper is configured."""

from vaikuttavuus.models.audit import AuditEvent, ImportBatch
from vaikuttavuus.models.base import Base, utcnow
from vaikuttavuus.models.clinical import ClinicalMeasurement, Procedure
from vaikuttavuus.models.costing import (
    CostCentre,
    CostItem,
    PriceIndexPoint,
    Product,
    ServiceExposure,
    UnitCost,
)
from vaikuttavuus.models.data_changes import DataChange
from vaikuttavuus.models.instruments import InstrumentVersion
from vaikuttavuus.models.people import Enrolment, Person
from vaikuttavuus.models.pilots import Arm, Pilot, TimePoint, TimePointInstrument
from vaikuttavuus.models.responses import RESPONSE_MODES, Answer, Response
from vaikuttavuus.models.schedule import AccessToken, Invitation, OutboxMessage
from vaikuttavuus.models.snapshots import AnalysisSnapshot
from vaikuttavuus.models.throttle import ThrottleCounter
from vaikuttavuus.models.users import Role, User, new_session_nonce, user_pilots

__all__ = [
    "RESPONSE_MODES",
    "AccessToken",
    "AnalysisSnapshot",
    "Answer",
    "Arm",
    "AuditEvent",
    "Base",
    "ClinicalMeasurement",
    "CostCentre",
    "CostItem",
    "DataChange",
    "Enrolment",
    "ImportBatch",
    "InstrumentVersion",
    "Invitation",
    "OutboxMessage",
    "Person",
    "Pilot",
    "PriceIndexPoint",
    "Procedure",
    "Product",
    "Response",
    "Role",
    "ServiceExposure",
    "ThrottleCounter",
    "TimePoint",
    "TimePointInstrument",
    "UnitCost",
    "User",
    "new_session_nonce",
    "user_pilots",
    "utcnow",
]
