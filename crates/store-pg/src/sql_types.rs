//! The column types the two backends spell differently, named once: [`AnyUuid`] (PostgreSQL's
//! `uuid`, SQLite's lower-case hyphenated text), [`AnyJson`] (`jsonb`, or its text) and [`AnyTime`]
//! (`timestamptz`, or fixed-width UTC text), so that one schema and one set of queries serve both
//! backends. Rows read them as `Uuid`, `serde_json::Value` and `DateTime<Utc>`; values are written
//! through [`Id`], [`Json`] and [`At`] (diesel lets a value be bound only as a type of this crate).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::expression::{AppearsOnTable, AsExpression, Expression, SelectableExpression};
use diesel::expression::{ValidGrouping, is_aggregate};
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Double, SqlType, TimestamptzSqlite};
use diesel::sqlite::{Sqlite, SqliteValue};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[diesel(
    postgres_type(oid = 2950, array_oid = 2951),
    sqlite_type(name = "Text")
)]
pub struct AnyUuid;

#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[diesel(
    postgres_type(oid = 3802, array_oid = 3807),
    sqlite_type(name = "Text")
)]
pub struct AnyJson;

#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[diesel(
    postgres_type(oid = 1184, array_oid = 1185),
    sqlite_type(name = "Text")
)]
pub struct AnyTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, AsExpression)]
#[diesel(sql_type = AnyUuid)]
pub struct Id(pub Uuid);

#[derive(Clone, Debug, PartialEq, AsExpression)]
#[diesel(sql_type = AnyJson)]
pub struct Json(pub Value);

#[derive(Clone, Copy, Debug, PartialEq, Eq, AsExpression)]
#[diesel(sql_type = AnyTime)]
pub struct At(pub DateTime<Utc>);

/// On PostgreSQL, the driver's own encoding of the native type.
macro_rules! native_on_pg {
    ($sql:ty, $write:ty, $read:ty, $pg:ty) => {
        impl ToSql<$sql, Pg> for $write {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <$read as ToSql<$pg, Pg>>::to_sql(&self.0, out)
            }
        }
        impl FromSql<$sql, Pg> for $read {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                <$read as FromSql<$pg, Pg>>::from_sql(value)
            }
        }
    };
}

native_on_pg!(AnyUuid, Id, Uuid, diesel::sql_types::Uuid);
native_on_pg!(AnyJson, Json, Value, diesel::sql_types::Jsonb);
native_on_pg!(AnyTime, At, DateTime<Utc>, diesel::sql_types::Timestamptz);

/// On SQLite, text: written by `$to_text`; read by `$from_text` where given.
macro_rules! text_on_sqlite {
    ($sql:ty, $write:ty => $to_text:expr $(, $read:ty => $from_text:expr)?) => {
        impl ToSql<$sql, Sqlite> for $write {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value($to_text(&self.0));
                Ok(IsNull::No)
            }
        }
        $(impl FromSql<$sql, Sqlite> for $read {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(value)?;
                Ok($from_text(&text)?)
            }
        })?
    };
}

// Ids in the form the migration's DEFAULT makes too, so that an id compares equal however the row
// was written (any form `Uuid::parse_str` takes is read); times as `time_text` says.
text_on_sqlite!(AnyUuid, Id => |id: &Uuid| id.hyphenated().to_string(),
    Uuid => Uuid::parse_str);
text_on_sqlite!(AnyJson, Json => Value::to_string, Value => serde_json::from_str::<Value>);
text_on_sqlite!(AnyTime, At => |t: &DateTime<Utc>| time_text(*t));

/// Any form diesel's SQLite reader takes, `time_text`'s among them.
impl FromSql<AnyTime, Sqlite> for DateTime<Utc> {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<TimestamptzSqlite, Sqlite>>::from_sql(value)
    }
}

/// How SQLite holds a point in time: UTC, microseconds (PostgreSQL's precision; finer digits are cut,
/// as PostgreSQL's driver cuts them), always the same width, so that comparing and ordering the text
/// compares and orders the times. diesel's own encoding (`%F %T%.f%:z`) varies the fraction's digits,
/// which would order `…:00+00:00` before `…:00.000+00:00`; diesel reads this form back. Times outside
/// the years 0001–9999 are written as the nearest end of that range, which keeps the width fixed.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    let first = NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    let last = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999));
    let t = first.map_or(t, |first| t.max(first.and_utc()));
    let t = last.map_or(t, |last| t.min(last.and_utc()));
    t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// The database's clock plus `offset`: PostgreSQL's `NOW()` (the transaction's start, one clock for
/// every instance); for the embedded file, the process's clock, taken when this is made.
#[derive(Clone, Copy, Debug, QueryId)]
pub struct Now {
    at: At,
    offset_secs: f64,
}

/// Saturating: an offset too large for a time is the latest time.
pub fn now_plus(offset: Duration) -> Now {
    let at = chrono::TimeDelta::from_std(offset)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Now {
        at: At(at),
        offset_secs: offset.as_secs_f64(),
    }
}

impl Expression for Now {
    type SqlType = AnyTime;
}

impl<QS> AppearsOnTable<QS> for Now {}

impl<QS> SelectableExpression<QS> for Now {}

impl<GB> ValidGrouping<GB> for Now {
    type IsAggregate = is_aggregate::Never;
}

impl QueryFragment<Pg> for Now {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql("(NOW() + make_interval(secs => ");
        out.push_bind_param::<Double, _>(&self.offset_secs)?;
        out.push_sql("))");
        Ok(())
    }
}

impl QueryFragment<Sqlite> for Now {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> diesel::QueryResult<()> {
        out.push_bind_param::<AnyTime, _>(&self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn times_are_written_fixed_width_in_time_order() {
        let base = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
        let times = [
            base,
            base + TimeDelta::nanoseconds(1),
            base + TimeDelta::microseconds(1),
            base + TimeDelta::milliseconds(500),
            base + TimeDelta::milliseconds(500) + TimeDelta::microseconds(1),
            base + TimeDelta::seconds(1),
        ];
        let texts: Vec<String> = times.iter().map(|t| time_text(*t)).collect();
        assert_eq!(texts[0], "2026-01-05 00:00:00.000000+00:00");
        assert_eq!(texts[0], texts[1], "finer than a microsecond is cut");
        assert!(texts.iter().all(|t| t.len() == texts[0].len()));
        assert!(texts.windows(2).skip(1).all(|w| w[0] < w[1]));
        let far = Utc.with_ymd_and_hms(20_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(time_text(far), "9999-12-31 23:59:59.999999+00:00");
    }
}
