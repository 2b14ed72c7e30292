//! How the store's records are read from either backend beyond diesel's own types: the nullable
//! `resolved` flag. (Enums stored as words are read as `String` and converted by `TryFrom<String>`.)
//! The records derive diesel's `Queryable` and `Selectable` (model.rs), naming these as
//! `deserialize_as`.

use crate::error::{Result, StoreError};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{Bool, Nullable};

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
