//! How the store's records are read from either backend: the stored words of the enums (`HIGH`,
//! `PERFORMANCE`, `running`) and the nullable `resolved` flag. The records themselves derive
//! diesel's `Queryable` and `Selectable` (model.rs), naming these as `deserialize_as`.

use crate::error::{Result, StoreError};
use crate::model::{RunStatus, RunTrigger};
use detect_core::{AnomalyType, Severity};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{Bool, Nullable, Text};

/// A stored word, read into the enum it names. The schema allows only the known words: another is a
/// schema out of date, and fails the read.
#[derive(FromSqlRow)]
pub struct Word(String);

impl<DB: Backend> FromSql<Text, DB> for Word
where
    String: FromSql<Text, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        String::from_sql(value).map(Word)
    }
}

macro_rules! named_by_words {
    ($($enum:ty: $what:literal),*) => {$(
        impl TryFrom<Word> for $enum {
            type Error = String;
            fn try_from(word: Word) -> std::result::Result<Self, String> {
                <$enum>::parse(&word.0).ok_or_else(|| format!("unknown {} {}", $what, word.0))
            }
        }
    )*};
}

named_by_words!(AnomalyType: "anomaly type", Severity: "severity", RunTrigger: "run trigger",
    RunStatus: "run status");

/// `resolved`, where NULL (a row written by another program) means not resolved.
#[derive(FromSqlRow)]
pub struct OrFalse(bool);

impl<DB: Backend> FromSql<Nullable<Bool>, DB> for OrFalse
where
    Option<bool>: FromSql<Nullable<Bool>, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Self::from_nullable_sql(Some(value))
    }

    fn from_nullable_sql(value: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        let resolved = Option::<bool>::from_nullable_sql(value)?;
        Ok(OrFalse(resolved.unwrap_or(false)))
    }
}

impl From<OrFalse> for bool {
    fn from(flag: OrFalse) -> bool {
        flag.0
    }
}

/// The record of a row found, or [`StoreError::NotFound`] naming `what`.
pub(crate) fn found<T>(row: Option<T>, what: impl FnOnce() -> String) -> Result<T> {
    row.ok_or_else(|| StoreError::not_found(what()))
}
