//! Listing: by id prefix, modification window and keyset pagination (the
//! continuation token is the last object id of the previous page).

use csal_core::{ListPage, ListRequest, Result, StorageError};

use crate::tables::{Db, row_to_meta};

/// Largest page we return.
pub const MAX_PAGE: usize = 1000;

enum Arg {
    Text(String),
    Int(i64),
}

pub(crate) async fn list_objects(db: &Db, request: &ListRequest) -> Result<ListPage> {
    let limit = request.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let mut sql = format!(
        "SELECT object_id, size, content_type, metadata_json, checksum, modified_ms FROM {} WHERE 1 = 1",
        db.objects
    );
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    let prefix = request.id_prefix();
    if !prefix.is_empty() {
        push(&mut sql, " AND object_id >= ?", Arg::Text(prefix.clone()));
        push(&mut sql, " AND substr(object_id, 1, CAST(? AS INTEGER))", Arg::Int(prefix.chars().count() as i64));
        push(&mut sql, " = ?", Arg::Text(prefix.clone()));
    }
    if let Some(after) = &request.continuation {
        if after.is_empty() || after.len() > csal_core::ids::MAX_OBJECT_ID_LEN {
            return Err(StorageError::invalid_input("continuation token is not one this provider gave out"));
        }
        push(&mut sql, " AND object_id > ?", Arg::Text(after.clone()));
    }
    if let Some(t) = request.modified_after {
        push(&mut sql, " AND modified_ms >= ?", Arg::Int(to_ms(t)));
    }
    if let Some(t) = request.modified_before {
        push(&mut sql, " AND modified_ms < ?", Arg::Int(to_ms(t)));
    }
    push(&mut sql, " ORDER BY object_id LIMIT ?", Arg::Int(limit as i64 + 1));

    let mut query = sqlx::query(&sql);
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s),
            Arg::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(&db.pool).await.map_err(db.err("list objects"))?;
    let more = rows.len() > limit;
    let mut objects = Vec::with_capacity(rows.len().min(limit));
    for row in rows.iter().take(limit) {
        objects.push(row_to_meta(db, row)?);
    }
    let next_page = if more { objects.last().map(|m| m.object_id.clone()) } else { None };
    Ok(ListPage { objects, next_page })
}

fn to_ms(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis().min(i64::MAX as u128) as i64,
        Err(_) => 0,
    }
}
