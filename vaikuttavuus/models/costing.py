"""The product catalogue (loaded from ``costing/``) and each person's resource use and costs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow

Money = Numeric(14, 4, asdecimal=False)


class CostCentre(Base):
    __tablename__ = "cost_centres"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[dict[str, Any]]


class Product(Base):
    __tablename__ = "products"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[dict[str, Any]]
    unit: Mapped[str] = mapped_column(String(40))
    cost_centre_code: Mapped[str] = mapped_column(ForeignKey("cost_centres.code"))


class UnitCost(Base):
    __tablename__ = "unit_costs"

    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"), primary_key=True)
    price_year: Mapped[int] = mapped_column(primary_key=True)
    unit_cost_eur: Mapped[float] = mapped_column(Money)


class PriceIndexPoint(Base):
    __tablename__ = "price_index"

    year: Mapped[int] = mapped_column(primary_key=True)
    index: Mapped[float] = mapped_column(Float)


class CostItem(Base):
    """Resource use (product × quantity on a date) or a direct episode cost in euros."""

    __tablename__ = "cost_items"
    __table_args__ = (
        CheckConstraint("kind IN ('resource_use', 'direct')", name="kind_known"),
        CheckConstraint(
            "(kind = 'resource_use' AND product_code IS NOT NULL AND quantity IS NOT NULL)"
            " OR (kind = 'direct' AND amount_eur IS NOT NULL AND price_year IS NOT NULL)",
            name="kind_fields",
        ),
        Index("ix_cost_items_enrolment_date", "enrolment_id", "service_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12), default="resource_use")
    product_code: Mapped[str | None] = mapped_column(ForeignKey("products.code"))
    quantity: Mapped[float | None] = mapped_column(Float)
    amount_eur: Mapped[float | None] = mapped_column(Money)
    price_year: Mapped[int | None]
    service_date: Mapped[date]
    cost_centre_code: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(String(200))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    row_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceExposure(Base):
    """A service an older adult received: type, provider sector, period and contacts."""

    __tablename__ = "service_exposures"
    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="period_in_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    service_type: Mapped[str] = mapped_column(String(40))
    provider_sector: Mapped[str] = mapped_column(String(20))
    provider_name: Mapped[str | None] = mapped_column(String(200))
    started_on: Mapped[date]
    ended_on: Mapped[date | None]
    contacts: Mapped[int] = mapped_column(default=0)
    cost_eur: Mapped[float | None] = mapped_column(Money)
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    row_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
