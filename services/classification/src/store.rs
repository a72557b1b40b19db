//! Classification's database: the result for each case.

use jiesu_kit::{CaseKey, Db, Tx, with_tx};

use crate::Error;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassificationRow {
    pub case_id: String,
    pub case_no: String,
    pub category: String,
    pub sub_item: String,
    pub urgency: String,
    pub confidence: f64,
    /// JSON array of the keywords that matched.
    pub matched_keywords: String,
    pub fallback: bool,
    pub classified_at: i64,
    /// The version of the model that decided; empty for the keyword classifier.
    pub model_version: String,
    /// 咨询/求助/投诉/举报/建议 as a key; empty when not decided.
    pub request_type: String,
    /// JSON array of [sub-item, probability], likeliest first.
    pub candidates: String,
}

/// Records a case's classification; `false` when the case was classified before.
pub async fn record_classification(tx: &mut Tx, row: &ClassificationRow) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO classifications
             (case_id, case_no, category, sub_item, urgency, confidence, matched_keywords, fallback, classified_at,
              model_version, request_type, candidates)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (case_id) DO NOTHING")
        .bind(&row.case_id).bind(&row.case_no).bind(&row.category).bind(&row.sub_item).bind(&row.urgency)
        .bind(row.confidence).bind(&row.matched_keywords).bind(row.fallback).bind(row.classified_at)
        .bind(&row.model_version).bind(&row.request_type).bind(&row.candidates)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn get(db: &Db, key: &CaseKey) -> Result<Option<ClassificationRow>, Error> {
    let select = "SELECT case_id, case_no, category, sub_item, urgency, confidence, matched_keywords, fallback, classified_at,
                         model_version, request_type, candidates
                  FROM classifications";
    Ok(db.rows_of_case(select, key, "").await?.pop())
}

/// Records where a classified case is; `false` if it was recorded before.
pub async fn record_area_case(
    tx: &mut Tx,
    case_id: &str,
    sub_item: &str,
    street: &str,
    community: &str,
    at_ms: i64,
) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO area_cases (case_id, sub_item, street, community, classified_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (case_id) DO NOTHING")
        .bind(case_id).bind(sub_item).bind(street).bind(community).bind(at_ms)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The cases of `sub_item` in `community` classified in [`from`, `to`), the latest first.
pub async fn area_cases(tx: &mut Tx, sub_item: &str, community: &str, from: i64, to: i64) -> Result<Vec<String>, Error> {
    let rows = with_tx!(tx, conn => sqlx::query_as::<_, (String,)>(
        "SELECT case_id FROM area_cases WHERE sub_item = $1 AND community = $2 AND classified_at >= $3 AND classified_at < $4
         ORDER BY classified_at DESC, case_id")
        .bind(sub_item).bind(community).bind(from).bind(to).fetch_all(conn).await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many cases of `sub_item` in `community` were classified in [`from`, `to`).
pub async fn count_area_cases(tx: &mut Tx, sub_item: &str, community: &str, from: i64, to: i64) -> Result<i64, Error> {
    let (n,) = with_tx!(tx, conn => sqlx::query_as::<_, (i64,)>(
        "SELECT COUNT(*) FROM area_cases WHERE sub_item = $1 AND community = $2 AND classified_at >= $3 AND classified_at < $4")
        .bind(sub_item).bind(community).bind(from).bind(to).fetch_one(conn).await)?;
    Ok(n)
}

/// Whether a hot spot of `sub_item` in `community` was raised since `since`.
pub async fn raised_since(tx: &mut Tx, sub_item: &str, community: &str, since: i64) -> Result<bool, Error> {
    let row = with_tx!(tx, conn => sqlx::query_as::<_, (String,)>(
        "SELECT hotspot_id FROM hotspots WHERE sub_item = $1 AND community = $2 AND raised_at >= $3 LIMIT 1")
        .bind(sub_item).bind(community).bind(since).fetch_optional(conn).await)?;
    Ok(row.is_some())
}

/// A hot spot as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HotspotRow {
    pub hotspot_id: String,
    pub sub_item: String,
    pub street: String,
    pub community: String,
    pub count: i64,
    pub baseline: f64,
    pub window_start: i64,
    pub raised_at: i64,
    /// JSON array of case ids.
    pub case_ids: String,
}

pub async fn insert_hotspot(tx: &mut Tx, h: &HotspotRow) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO hotspots (hotspot_id, sub_item, street, community, count, baseline, window_start, raised_at, case_ids)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (hotspot_id) DO NOTHING")
        .bind(&h.hotspot_id).bind(&h.sub_item).bind(&h.street).bind(&h.community).bind(h.count).bind(h.baseline)
        .bind(h.window_start).bind(h.raised_at).bind(&h.case_ids)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The hot spots raised since `since` (of `street`, or all when empty), the most cases first.
pub async fn hotspots(db: &Db, since: i64, street: &str) -> Result<Vec<HotspotRow>, Error> {
    let rows = jiesu_kit::with_pool!(db, pool => sqlx::query_as::<_, HotspotRow>(
        "SELECT hotspot_id, sub_item, street, community, count, baseline, window_start, raised_at, case_ids FROM hotspots
         WHERE raised_at >= $1 AND ($2 = '' OR street = $2) ORDER BY count DESC, raised_at DESC LIMIT 200")
        .bind(since).bind(street).fetch_all(pool).await)?;
    Ok(rows)
}
