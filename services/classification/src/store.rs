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
