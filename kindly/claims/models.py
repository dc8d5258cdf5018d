"""The claims tables of the interest part: the base-rate table `kindly rates update` loads."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


class BaseRate(Base):
    """One row of the loaded base-rate table (§ 247 BGB); empty: the table Kindly ships."""

    __tablename__ = "base_rate"

    valid_from: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # hundredths of a percent (1.27 % is 127): the Bundesbank publishes two decimals
    rate_bp: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
