//! How the SQLite file holds what PostgreSQL has types for: UUIDs and JSON as text, points in time as
//! fixed-width UTC text.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Text, TimestamptzSqlite};
use diesel::sqlite::Sqlite;
use serde_json::Value;
use uuid::Uuid;

/// A UUID as stored: lower-case, hyphenated text (the form the migration's DEFAULT makes too, so that
/// an id compares equal however the row was written). Any form `Uuid::parse_str` takes is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub(crate) struct Id(pub Uuid);

impl ToSql<Text, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for Id {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(Id(Uuid::parse_str(&text)?))
    }
}

/// A JSON value as stored: its text.
#[derive(Clone, Debug, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub(crate) struct JsonText(pub Value);

impl ToSql<Text, Sqlite> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for JsonText {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(JsonText(serde_json::from_str(&text)?))
    }
}

/// How a point in time is written: UTC, microseconds (PostgreSQL's precision; finer digits are cut, as
/// PostgreSQL's driver cuts them), always the same width, so that comparing and ordering the text
/// compares and orders the times. diesel's own encoding (`%F %T%.f%:z`) drops or varies the fraction's
/// digits, which would order `…:00+00:00` before `…:00.000+00:00`; diesel reads this form back.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f+00:00";

/// A point in time to write or compare with (rows read back as `DateTime<Utc>`). Times outside the
/// years 0001–9999 are written as the nearest end of that range, which keeps the width fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, AsExpression)]
#[diesel(sql_type = TimestamptzSqlite)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Ts {
    pub(crate) fn now() -> Ts {
        Ts(Utc::now())
    }

    /// The text this time is stored as.
    pub(crate) fn text(self) -> String {
        let first = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        let last = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
            .map(|t| t.and_utc());
        let t = first.map_or(self.0, |first| self.0.max(first));
        let t = last.map_or(t, |last| t.min(last));
        t.format(TIME_FORMAT).to_string()
    }
}

impl ToSql<TimestamptzSqlite, Sqlite> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.text());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn times_are_written_fixed_width_in_time_order() {
        let base = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
        let times = [
            base,
            base + Duration::nanoseconds(1),
            base + Duration::microseconds(1),
            base + Duration::milliseconds(500),
            base + Duration::milliseconds(500) + Duration::microseconds(1),
            base + Duration::seconds(1),
        ];
        let texts: Vec<String> = times.iter().map(|t| Ts(*t).text()).collect();
        assert_eq!(texts[0], "2026-01-05 00:00:00.000000+00:00");
        assert_eq!(texts[0], texts[1], "finer than a microsecond is cut");
        assert!(texts.iter().all(|t| t.len() == texts[0].len()));
        assert!(texts.windows(2).skip(1).all(|w| w[0] < w[1]));
        let far = Utc.with_ymd_and_hms(20_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(Ts(far).text(), "9999-12-31 23:59:59.999999+00:00");
    }
}
